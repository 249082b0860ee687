"""The kit's AMQP connections write what one turn of the event loop produced in one send.

aiormq hands each frame set (a publish, an ack, a heartbeat) to the socket as soon as its
writer task takes it from the queue: one `send` system call per publish and per ack. A
replica handling a burst of commands, or a gateway with sixteen requests in flight, then
pays the kernel's loopback path and the broker's reader once per frame. `FrameBatcher` keeps
what is written during one turn and sends it joined at the start of the next, so the broker
reads the burst as one segment; with nothing else pending that costs one turn's latency.

Nothing changes in what is promised: aiormq's `drain` says the frames are handed on, not
delivered, and publisher confirms still say when the broker has them. `KitConnection` is the
robust connection that uses it; `BrokerAddresses` connects every service with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq
from aio_pika import RobustConnection
from aiormq.connection import TCPTransportFactory, TLSTransportFactory
from yarl import URL

__all__ = ["BATCH_BYTES", "BatchingTransport", "FrameBatcher", "KitConnection"]

BATCH_BYTES = 256 * 1024
"""Written at once, without waiting for the next turn, when this much is pending (a bulk
publish): the batch stays bounded."""


class FrameBatcher:
    """A `StreamWriter` whose writes made in one event-loop turn go out as one."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: list[bytes] = []
        self.size = 0
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self.pending:
            self._loop.call_soon(self.flush)
        self.pending.append(data)
        self.size += len(data)
        if self.size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Hand what is pending to the transport, joined."""
        if not self.pending:
            return
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending, self.size = [], 0
        if not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        """The transport's flow control (what is pending is bounded by `BATCH_BYTES`)."""
        await self.writer.drain()

    def write_eof(self) -> None:
        self.flush()
        self.writer.write_eof()

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)


class BatchingTransport(aiormq.TransportFactory):
    """aiormq's own transport for the URL's scheme (TCP, or TLS for `amqps`: a failover may
    change it) with its writer wrapped in a `FrameBatcher`."""

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        plain = TLSTransportFactory() if url.scheme == "amqps" else TCPTransportFactory()
        reader, writer = await plain.create(url, **kwargs)
        return reader, FrameBatcher(writer)  # type: ignore[return-value]


class KitConnection(RobustConnection):
    """aio-pika's robust connection over a `BatchingTransport` (each reconnect too)."""

    def __init__(self, url: URL, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self.kwargs["transport_factory"] = BatchingTransport()
