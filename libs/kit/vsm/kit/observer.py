"""A transient view of what flows on some exchanges, for one process (e.g. a live console).

An exclusive, auto-deleted queue of this process's own, bound to the given exchanges and
consumed without acks: an observer wants the present, not a backlog, so the queue keeps at
most `max_length` messages (the oldest dropped first), each for at most `ttl_ms`. It lives
from `start()` to `stop()` (or the connection's end) and comes back with a lost connection.
Nothing here is durable, nothing is acknowledged, and a slow observer slows no one else.
With signing keys, a message whose signature does not hold is dropped before anyone sees it
(a security event, counted), as every other consumer refuses it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from vsm.contract import topology
from vsm.kit.bus import Bus

__all__ = ["Observed", "Observer"]

Observed = Callable[[str, str, bytes], None]
"""Called with the canonical exchange name, the routing key and the body of each message."""


class Observer:
    def __init__(
        self,
        bus: Bus,
        bindings: Sequence[topology.Binding],
        on_message: Observed,
        *,
        max_length: int = 1000,
        ttl_ms: int = 10_000,
    ) -> None:
        self.bus = bus
        self.bindings = tuple(bindings)
        self.on_message = on_message
        self.arguments: dict[str, int | str] = {
            "x-max-length": max_length,
            "x-overflow": "drop-head",
            "x-message-ttl": ttl_ms,
        }
        self.queue = bus.namespace.name(f"vsm.observer.{bus.service}.{uuid.uuid4().hex[:12]}")
        self._channel: AbstractChannel | None = None

    @property
    def running(self) -> bool:
        return self._channel is not None

    async def start(self) -> None:
        """Declare the queue, bind it and consume (idempotent)."""
        if self._channel is not None:
            return
        connection = await self.bus.broker.connect()
        channel = await connection.channel(publisher_confirms=False)
        try:
            queue = await channel.declare_queue(
                self.queue, durable=False, exclusive=True, auto_delete=True,
                arguments=self.arguments,
            )  # fmt: skip
            for binding in self.bindings:
                exchange = self.bus.namespace.name(binding.exchange.name)
                await queue.bind(exchange, routing_key=binding.routing_key or "")
            await queue.consume(self._deliver, no_ack=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._channel = channel

    async def stop(self) -> None:
        """Close the channel: the broker deletes the queue with it."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        guard = self.bus.guard
        if guard is not None and guard.verify(message, self.queue) is not None:
            return  # logged and counted by the guard; never shown
        exchange = self.bus.namespace.canonical(message.exchange or "")
        self.on_message(exchange, message.routing_key or "", message.body)
