"""The kit's connections send what one event-loop turn wrote as one write to the socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
import pytest

from vsm.kit.addresses import BrokerAddresses
from vsm.kit.wire import BATCH_BYTES, FrameBatcher, KitConnection


@dataclass
class Peer:
    """A loopback server that keeps what it receives."""

    received: bytearray = field(default_factory=bytearray)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.received += data
            self.arrived.set()
        self.closed.set()
        writer.close()


class CountingWriter:
    """The transport's writer, counting the writes handed to it."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.writer.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.writer, name)


@pytest.fixture
async def wired() -> AsyncIterator[tuple[Peer, CountingWriter, FrameBatcher]]:
    peer = Peer()
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    counting = CountingWriter(writer)
    try:
        yield peer, counting, FrameBatcher(counting)  # type: ignore[arg-type]
    finally:
        writer.close()
        server.close()


async def received(peer: Peer, size: int) -> bytes:
    async with asyncio.timeout(5):
        while len(peer.received) < size:
            peer.arrived.clear()
            await peer.arrived.wait()
    return bytes(peer.received)


async def test_frames_written_in_one_turn_go_out_as_one_write_in_order(
    wired: tuple[Peer, CountingWriter, FrameBatcher],
) -> None:
    peer, counting, batcher = wired
    frames = [bytes([n]) * 100 for n in range(1, 6)]
    for frame in frames:
        batcher.write(frame)
    assert counting.writes == []  # not before the turn ends
    await asyncio.sleep(0)
    assert counting.writes == [500]
    assert await received(peer, 500) == b"".join(frames)
    batcher.write(b"x" * 10)  # the next turn's own write
    await asyncio.sleep(0)
    assert counting.writes == [500, 10]


async def test_a_burst_beyond_the_batch_bound_is_written_at_once(
    wired: tuple[Peer, CountingWriter, FrameBatcher],
) -> None:
    peer, counting, batcher = wired
    frame = b"y" * (BATCH_BYTES // 4)
    for _ in range(5):
        batcher.write(frame)
    assert counting.writes == [BATCH_BYTES]  # four frames reached the bound
    await batcher.drain()
    await asyncio.sleep(0)
    assert counting.writes == [BATCH_BYTES, len(frame)]
    assert await received(peer, 5 * len(frame)) == frame * 5


async def test_closing_sends_what_is_pending_first(
    wired: tuple[Peer, CountingWriter, FrameBatcher],
) -> None:
    peer, counting, batcher = wired
    batcher.write(b"last words")
    batcher.close()
    async with asyncio.timeout(5):
        await peer.closed.wait()
    assert bytes(peer.received) == b"last words"
    assert counting.writes == [10]


async def test_the_services_connection_batches_and_every_publish_arrives_in_order(
    amqp_url: str,
) -> None:
    broker = BrokerAddresses(amqp_url).rabbit_broker()
    connection = await broker.connect()
    try:
        assert isinstance(connection, KitConnection)
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(str(n).encode()), routing_key=queue.name
                )
                for n in range(300)
            )
        )
        bodies = []
        async with asyncio.timeout(10):
            async with queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    bodies.append(int(message.body))
                    if len(bodies) == 300:
                        break
        assert bodies == list(range(300))
    finally:
        await broker.stop()
