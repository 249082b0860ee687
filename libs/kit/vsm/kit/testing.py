"""A service's handlers in memory: the same code, no broker, a test in milliseconds.

`InMemory(bus)` puts FastStream's `TestRabbitBroker` in front of the bus's handlers and a
`Recorder` behind it in place of the kit's publishing channel. A test sends an envelope
the way a peer would (`request`, `send`), and reads the reply and what the handlers
published (`published`), dead letters included::

    runtime = Runtime("control", settings)
    handlers.register(runtime.bus, ...)
    async with InMemory(runtime.bus) as memory:
        reply = await memory.request("control", "budget", SetBudget(budget=...))
        assert memory.published(topology.CONTROL) == []

Requests the service sends (`Bus.request`, `ask`) go to the same test broker: a test
stands in for the peer with a handler of its own on the peer's queue. What needs the broker
itself (streams, the delivery limit, reconnection, signing) stays for the integration suite.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiormq import spec
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from pydantic import TypeAdapter

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.kit.bus import Bus
from vsm.kit.deadletter import REASON_HEADER

__all__ = ["ENVELOPE", "InMemory", "LocalRequester", "Published", "Recorder"]

ENVELOPE: TypeAdapter[Envelope[Message]] = TypeAdapter(Envelope[Message])


@dataclass(frozen=True)
class Published:
    """One message the handlers published: where to (canonical names) and what."""

    exchange: str
    """The canonical exchange name (`""` for a direct reply or a queue by name)."""
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def envelope(self) -> Envelope[Message]:
        return ENVELOPE.validate_json(self.body)

    @property
    def data(self) -> Message:
        return self.envelope.data


class Recorder:
    """Stands in for the kit's `Producer`: keeps each publish instead of sending it."""

    def __init__(self, bus: Bus) -> None:
        self.namespace = bus.namespace
        self.sent: list[Published] = []

    async def start(self, _: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        mandatory: bool,
        persist: bool = True,
        headers: dict[str, Any] | None = None,
        **properties: Any,
    ) -> None:
        canonical = self.namespace.canonical(exchange)
        self.sent.append(Published(canonical, routing_key, body, dict(headers or {})))


class LocalRequester:
    """Stands in for the kit's `Requester`: a request goes to the test broker's handlers."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker

    async def start(self, _: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def request(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        timeout: float,
    ) -> Any:
        async with asyncio.timeout(timeout):
            return await self.broker.request(
                body,
                exchange=exchange or None,
                routing_key=routing_key,
                headers=properties.headers,
                correlation_id=properties.correlation_id,
            )


class InMemory:
    """The bus's handlers on FastStream's test broker, what they publish recorded."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.recorder = Recorder(bus)
        self._test = TestRabbitBroker(bus.broker, connect_only=False)
        self._producer: Any = None
        self._requester: Any = None
        self.broker = bus.broker

    async def __aenter__(self) -> InMemory:
        self._producer, self.bus.producer = self.bus.producer, self.recorder  # type: ignore[assignment]
        self.broker = await self._test.__aenter__()
        self._requester, self.bus.requester = self.bus.requester, LocalRequester(self.broker)  # type: ignore[assignment]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._test.__aexit__(kind, error, trace)
        self.bus.producer, self.bus.requester = self._producer, self._requester

    async def request(
        self, service: str, operation: str, body: Message, *, vsm_id: str | None = None
    ) -> Message:
        """Ask `service` to do `operation`, as `Bus.request` would: the reply's body (an
        `ErrorReply` when the request was refused or dead-lettered)."""
        exchange, key = topology.REQUESTS, topology.request_key(service, operation)
        return await self.ask(body, exchange, routing_key=key, vsm_id=vsm_id)

    async def ask(
        self,
        body: Message,
        to: topology.Queue | topology.Exchange,
        *,
        routing_key: str = "",
        vsm_id: str | None = None,
    ) -> Message:
        """Publish `body` to a queue, or on an exchange, expecting a reply: its body."""
        return (await self.ask_raw(self.envelope(body, vsm_id), to, routing_key)).data

    async def ask_raw(
        self,
        payload: Envelope[Any] | bytes,
        to: topology.Queue | topology.Exchange,
        routing_key: str = "",
    ) -> Envelope[Message]:
        """Publish an envelope (or any bytes) expecting a reply: the reply envelope."""
        reply = await self.broker.request(self._bytes(payload), **self._target(to, routing_key))
        if not reply.body:  # e.g. dead-lettered: a real requester is answered, not this one
            raise AssertionError(f"no reply from the handler of {to.name!r}")
        return ENVELOPE.validate_json(reply.body)

    async def send(
        self,
        body: Message | bytes,
        to: topology.Queue | topology.Exchange,
        *,
        routing_key: str = "",
        vsm_id: str | None = None,
    ) -> None:
        """Publish `body` (or raw bytes) to a queue, or on an exchange, and wait until its
        handler is done."""
        payload = body if isinstance(body, bytes) else self.envelope(body, vsm_id)
        await self.broker.publish(self._bytes(payload), **self._target(to, routing_key))

    def envelope(self, body: Message, vsm_id: str | None = None) -> Envelope[Message]:
        return Envelope.wrap(body, source="vsm/test", vsm_id=vsm_id or self.bus.vsm_id)

    def published(self, exchange: topology.Exchange | None = None) -> list[Published]:
        """What the handlers published so far (on `exchange` only, when given)."""
        return [p for p in self.recorder.sent if exchange is None or p.exchange == exchange.name]

    def dead_letters(self) -> list[tuple[str, str]]:
        """Each dead letter so far: (its reason, the queue it came from)."""
        return [
            (str(p.headers.get(REASON_HEADER)), p.routing_key)
            for p in self.published(topology.DEAD_LETTER)
        ]

    def _target(self, to: topology.Queue | topology.Exchange, key: str) -> dict[str, Any]:
        """Where to publish: on the exchange; a queue through its first binding (the one its
        FastStream subscriber knows), with that binding's key unless `key` is given."""
        if isinstance(to, topology.Exchange):
            return {"exchange": self.bus.exchange(to), "routing_key": key}
        if not to.bindings:
            return {"queue": self.bus.queue(to)}
        first = to.bindings[0]
        return {
            "exchange": self.bus.exchange(first.exchange),
            "routing_key": key or first.routing_key,
        }

    @staticmethod
    def _bytes(payload: Envelope[Any] | bytes) -> bytes:
        return payload if isinstance(payload, bytes) else payload.model_dump_json().encode()
