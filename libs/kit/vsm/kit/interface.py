"""What a service sends and receives on the bus, recorded as it is wired: the source of its
AsyncAPI document (`vsm.kit.asyncapi`).

The bus records its subscribers (`Bus.handle`) and publishers (`Bus.publisher`) here by
itself. What a service consumes or publishes outside them (its own consumers, publishes of a
type chosen at run time, requests to other services) it declares here when it is wired, with
names that may hold a placeholder for what is known only at run time
(`vsm.s1.{agent_id}.command`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vsm.contract import topology
from vsm.contract.message import Message

__all__ = ["Action", "Interface", "Use"]

Action = Literal["send", "receive"]


@dataclass
class Use:
    """One channel the service uses, one way, with the message types it carries."""

    action: Action
    exchange: topology.Exchange | None
    """Where a send goes (with `routing_key`); None for a queue the service consumes."""
    queue: topology.Queue | None
    routing_key: str = ""
    description: str = ""
    messages: dict[str, type[Message]] = field(default_factory=dict)
    replies: dict[str, type[Message]] = field(default_factory=dict)
    """For a request (a send on `vsm.requests`): the types of the answers it waits for."""
    into: topology.Binding | None = None
    """For a send: the exchange that `exchange` is bound into (exchange-to-exchange)."""

    @property
    def channel(self) -> str:
        """The channel's id in the document: readable, and `[A-Za-z0-9._-]` only."""
        if self.queue is not None:
            name = self.queue.name
        else:
            assert self.exchange is not None
            key = self.routing_key.replace("*", "any").replace("#", "all")
            name = f"{self.exchange.name}.{key}" if key else self.exchange.name
        return re.sub(r"[^\w.\-]", "", name)


class Interface:
    """Every use of the bus by one service, merged by channel and direction."""

    def __init__(self) -> None:
        self._uses: dict[tuple[Action, str], Use] = {}

    @property
    def uses(self) -> list[Use]:
        return sorted(self._uses.values(), key=lambda use: (use.channel, use.action))

    def _use(self, use: Use, messages: tuple[type[Message], ...]) -> Use:
        known = self._uses.setdefault((use.action, use.channel), use)
        known.messages.update((message.TYPE, message) for message in messages)
        known.description = known.description or use.description
        return known

    def receives(
        self, queue: topology.Queue, *messages: type[Message], description: str = ""
    ) -> None:
        """The service consumes `messages` from `queue`."""
        use = Use("receive", None, queue, description=description or queue.description)
        self._use(use, messages)

    def sends(
        self,
        exchange: topology.Exchange,
        *messages: type[Message],
        routing_key: str = "",
        description: str = "",
        replies: tuple[type[Message], ...] = (),
        into: topology.Binding | None = None,
    ) -> None:
        """The service publishes `messages` on `exchange` with `routing_key` (a pattern),
        and, when it names `replies`, waits for one of them on its direct reply-to."""
        use = Use("send", exchange, None, routing_key, description or exchange.description)
        use.into = into
        self._use(use, messages).replies.update((reply.TYPE, reply) for reply in replies)

    def sends_to_queue(
        self,
        queue: topology.Queue,
        *messages: type[Message],
        description: str = "",
        replies: tuple[type[Message], ...] = (),
    ) -> None:
        """The service publishes `messages` straight to `queue` (the default exchange)."""
        use = Use("send", None, queue, queue.name, description or queue.description)
        self._use(use, messages).replies.update((reply.TYPE, reply) for reply in replies)

    def asks(
        self, service: str, request: type[Message], *replies: type[Message], operation: str = "*"
    ) -> None:
        """The service sends `request` to `service` on `vsm.requests` and waits for one of
        `replies` (an `ErrorReply` is always possible)."""
        use = Use(
            "send",
            topology.REQUESTS,
            None,
            topology.request_key(service, operation),
            f"Requests to {service}; the answer comes back on the direct reply-to.",
        )
        self._use(use, (request,)).replies.update((reply.TYPE, reply) for reply in replies)

    def answers(self, queue: topology.Queue, *replies: type[Message]) -> None:
        """The service answers requests from `queue` with `replies`."""
        use = self._use(Use("receive", None, queue, description=queue.description), ())
        use.replies.update((reply.TYPE, reply) for reply in replies)

    def channels(self) -> set[str]:
        """The names of the exchanges and queues the service uses (canonical, templates as
        written): what the completeness check compares with the topology."""
        names: set[str] = set()
        for use in self._uses.values():
            if use.queue is not None:
                names.add(use.queue.name)
                names.update(binding.exchange.name for binding in use.queue.bindings)
            if use.exchange is not None:
                names.add(use.exchange.name)
        return names
