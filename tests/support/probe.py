"""A test's own client on the bus: the kit's Bus without a service, plus raw queue access."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from vsm.kit.addresses import BrokerAddresses
from vsm.kit.bus import Bus
from vsm.kit.names import Namespace
from vsm.kit.telemetry import create_telemetry


@dataclass
class Probe:
    bus: Bus
    channel: AbstractChannel
    namespace: Namespace

    async def publish_raw(self, exchange: str, body: bytes, routing_key: str = "") -> None:
        """Publish bytes as they are (for bad input) to the namespaced `exchange`."""
        target = await self.channel.get_exchange(self.namespace.name(exchange))
        await target.publish(aio_pika.Message(body, content_type="application/json"), routing_key)

    async def get(self, queue: str, timeout: float = 10.0) -> AbstractIncomingMessage:
        """The next message on the namespaced `queue`, acked; `TimeoutError` after `timeout`.

        The deadline is checked between polls, never by cancelling one: aiormq closes a
        channel whose RPC was cancelled, and every later call on it would fail."""
        target = await self.channel.get_queue(self.namespace.name(queue), ensure=False)
        deadline = time.monotonic() + timeout
        while True:
            message = await target.get(no_ack=True, fail=False)
            if message is not None:
                return message
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing on {queue!r} within {timeout:g} s")
            await asyncio.sleep(0.05)

    async def get_matching(
        self,
        queue: str,
        wanted: Callable[[AbstractIncomingMessage], bool],
        timeout: float = 10.0,
    ) -> AbstractIncomingMessage:
        """The first message on the namespaced `queue` that is `wanted` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.get(queue, timeout=max(0.0, deadline - time.monotonic()))
            if wanted(message):
                return message

    async def bind_queue(self, queue: str, exchange: str, routing_key: str = "#") -> str:
        """An exclusive, auto-deleted queue bound to `exchange`, to observe what flows there."""
        declared = await self.channel.declare_queue(
            self.namespace.name(queue), exclusive=True, auto_delete=True
        )
        await declared.bind(self.namespace.name(exchange), routing_key=routing_key)
        return queue


@asynccontextmanager
async def open_probe(url: str, prefix: str) -> AsyncIterator[Probe]:
    addresses = BrokerAddresses(url)
    broker = addresses.rabbit_broker(logger=logging.getLogger("vsm.probe"), log_level=logging.DEBUG)
    bus = Bus(
        broker,
        service="probe",
        namespace=Namespace(prefix),
        vsm_id="root",
        telemetry=create_telemetry("probe"),
        request_timeout_s=5.0,
    )
    await addresses.connect_broker(broker)
    connection = await bus.start()
    channel = await connection.channel()
    try:
        yield Probe(bus=bus, channel=channel, namespace=Namespace(prefix))
    finally:
        await channel.close()
        await bus.stop()
