"""A log of changes with snapshots on a real broker (`vsm.kit.snapshots`): a restart reads
from the last snapshot on and applies what follows it; the stream carries its retention, and
retention never drops the last snapshot or what follows it; a stream declared without
retention by an earlier release is kept; an entry that cannot be read stops the start-up
naming the log and the offset."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aio_pika
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry
from pydantic import Field

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.journal import JournalMark, LogSnapshot
from vsm.contract.message import Message
from vsm.kit.bus import Bus
from vsm.kit.deadletter import MessageGuard
from vsm.kit.eventlog import LogKeys, RefusedEntry
from vsm.kit.journal import append
from vsm.kit.names import Namespace
from vsm.kit.replay import ReplayGuard
from vsm.kit.signing import parse_keyring
from vsm.kit.snapshots import SnapshotLog
from vsm.kit.streams import Entry
from vsm.kit.telemetry import create_telemetry

pytestmark = pytest.mark.integration

RETENTION: dict[str, int | str] = {
    "x-max-length-bytes": 20 * 1024 * 1024,
    "x-stream-max-segment-size-bytes": 2 * 1024 * 1024,
}


class Added(Message):
    """A change: `n` added to the total."""

    TYPE: ClassVar[str] = "vsm.test.snapshots.added.v1"

    n: int = Field(ge=0)
    padding: str = ""


class Total(LogSnapshot):
    """The live state: the total and how many changes made it."""

    TYPE: ClassVar[str] = "vsm.test.snapshots.total.v1"

    total: int
    changes: int


class Counter:
    """A single writer's state and its log."""

    def __init__(self, bus: Bus, stream: topology.Queue, every: int = 10) -> None:
        self.bus, self.stream = bus, stream
        self.total = self.changes = 0
        self.log = SnapshotLog(
            bus,
            stream,
            Total,
            apply=self.apply,
            snapshot=lambda _: Total(total=self.total, changes=self.changes),
            restore=self.restore,
            mark=lambda keys: JournalMark(instance="test", live_keys=keys),
            every=every,
            interval_s=3600,
            timeout_s=60,
        )

    async def apply(self, entry: Entry, _: bool) -> None:
        data = entry.envelope.data
        assert isinstance(data, Added)
        self.total += data.n
        self.changes += 1

    def restore(self, state: Total) -> None:
        self.total, self.changes = state.total, state.changes

    async def add(self, n: int, padding: str = "") -> None:
        async with self.log.lock:
            await append(self.bus, self.stream, Added(n=n, padding=padding))
            self.total += n
            self.changes += 1
            await self.log.changed()


def make_bus(
    amqp_url: str,
    namespace: str,
    retention: dict[str, int | str],
    guard: MessageGuard | None = None,
) -> Bus:
    broker = RabbitBroker(amqp_url, logger=logging.getLogger("test"), log_level=logging.DEBUG)
    return Bus(
        broker,
        service="test",
        namespace=Namespace(namespace),
        vsm_id="root",
        telemetry=create_telemetry("test"),
        request_timeout_s=5,
        guard=guard,
        log_retention=retention,
    )


def guard(signing: str, logs: str | None = None) -> MessageGuard:
    """A guard signing with `signing`'s first key, reading the logs with `logs` too."""
    keyring = parse_keyring(signing)
    assert keyring is not None
    log_keys = parse_keyring(logs, "log key") if logs else None
    return MessageGuard(
        "test",
        keyring,
        ReplayGuard(300, 30),
        CollectorRegistry(),
        LogKeys(keyring.joined(log_keys) if log_keys else keyring),
    )


@pytest.fixture
async def bus(amqp_url: str, namespace: str) -> AsyncIterator[Bus]:
    bus = make_bus(amqp_url, namespace, RETENTION)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
def stream() -> topology.Queue:
    return topology.Queue(
        f"test.log.{secrets.token_hex(4)}",
        kind="stream",
        arguments=topology.LOG_RETENTION,
        snapshots=True,
    )


async def raw_publish(amqp_url: str, name: str, body: bytes) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=name)


async def first_offset(amqp_url: str, name: str) -> int:
    """The offset of the first entry the stream still holds."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(name, passive=True)
        async with queue.iterator(arguments={"x-stream-offset": "first"}) as messages:
            async for message in messages:
                offset = (message.headers or {})["x-stream-offset"]
                assert isinstance(offset, int)
                return offset
    raise AssertionError("an empty stream")


async def test_a_restart_reads_from_the_last_snapshot_and_applies_what_follows_it(
    bus: Bus, stream: topology.Queue
) -> None:
    writer = Counter(bus, stream, every=10)
    await writer.log.open()
    for n in range(1, 26):  # snapshots after the 10th and the 20th
        await writer.add(n)
    await writer.log.stop()
    assert writer.log.snapshots >= 3  # the first at the start, then one per ten changes

    reader = Counter(bus, stream)
    await reader.log.open()
    await reader.log.stop()
    assert (reader.total, reader.changes) == (sum(range(1, 26)), 25)
    # The snapshot, the five changes after it, the marker: not the 25 changes and 3 snapshots.
    assert reader.log.read == 7

    await reader.add(100)  # written after the snapshot the restart wrote: applied too
    await reader.log.stop()
    again = Counter(bus, stream)
    await again.log.open()
    await again.log.stop()
    assert (again.total, again.changes) == (sum(range(1, 26)) + 100, 26)


async def test_the_stream_is_declared_with_its_retention(
    amqp_url: str, namespace: str, bus: Bus, stream: topology.Queue
) -> None:
    await Counter(bus, stream).log.open()
    name = Namespace(namespace).name(stream.name)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        same = {"x-queue-type": "stream", **RETENTION}
        await (await connection.channel()).declare_queue(name, durable=True, arguments=same)
        other = {**same, "x-max-length-bytes": 1024 * 1024 * 1024}
        with pytest.raises(ChannelPreconditionFailed):
            await (await connection.channel()).declare_queue(name, durable=True, arguments=other)


async def test_a_stream_declared_without_retention_is_kept_with_its_entries(
    amqp_url: str, namespace: str, stream: topology.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    name = Namespace(namespace).name(stream.name)
    connection = await aio_pika.connect(amqp_url)
    async with connection:  # as an earlier release declared it
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "stream"})
    earlier = Envelope.wrap(Added(n=5), source="vsm/test")
    await raw_publish(amqp_url, name, earlier.model_dump_json().encode())

    bus = make_bus(amqp_url, namespace, RETENTION)
    await bus.start()
    try:
        reader = Counter(bus, stream)
        await reader.log.open()
        await reader.log.stop()
    finally:
        await bus.stop()
    assert (reader.total, reader.changes) == (5, 1)


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("bad JSON", b"{not json"),
        (
            "unknown type",
            Envelope.wrap(Added(n=1), source="vsm/test")
            .model_dump_json()
            .replace(Added.TYPE, "vsm.test.nothing.v1")
            .encode(),
        ),
        (
            "failing schema",
            Envelope.wrap(Added(n=1), source="vsm/test")
            .model_dump_json()
            .replace('"n":1', '"n":-4')
            .encode(),
        ),
    ],
)
async def test_an_entry_that_cannot_be_read_stops_the_start_up_naming_the_log_and_offset(
    amqp_url: str, namespace: str, bus: Bus, stream: topology.Queue, what: str, body: bytes
) -> None:
    writer = Counter(bus, stream, every=10)
    await writer.log.open()
    await writer.add(1)
    await writer.log.stop()
    await raw_publish(amqp_url, Namespace(namespace).name(stream.name), body)

    reader = Counter(bus, stream)
    with pytest.raises(RefusedEntry, match=rf"log {stream.name}, entry at offset \d+ .*cannot be"):
        await reader.log.open()


async def test_retention_drops_old_segments_but_never_the_last_snapshot_or_what_follows(
    amqp_url: str, namespace: str, stream: topology.Queue
) -> None:
    """Segments of 64 KiB, at most 512 KiB kept, a snapshot every 20 changes of ~1 KiB: the
    broker drops the oldest segments many times over, and a restart still reads the state."""
    small: dict[str, int | str] = {
        "x-max-length-bytes": 512 * 1024,
        "x-stream-max-segment-size-bytes": 64 * 1024,
    }
    bus = make_bus(amqp_url, namespace, small)
    await bus.start()
    try:
        writer = Counter(bus, stream, every=20)
        await writer.log.open()
        for n in range(2000):
            await writer.add(n % 7, padding="x" * 1000)
        await writer.log.stop()
        name = Namespace(namespace).name(stream.name)
        assert await first_offset(amqp_url, name) > 0  # retention has cut the log

        reader = Counter(bus, stream)
        await reader.log.open()
        await reader.log.stop()
    finally:
        await bus.stop()
    assert (reader.total, reader.changes) == (writer.total, 2000)
    assert reader.log.read <= 22


K1 = "k1:" + base64.b64encode(b"snapshot-key-one-0123456789abcd").decode()
K2 = "k2:" + base64.b64encode(b"snapshot-key-two-0123456789abcd").decode()


async def test_a_key_kept_for_the_logs_alone_signs_nothing_after_a_snapshot(
    amqp_url: str, namespace: str, stream: topology.Queue
) -> None:
    """k1 signed the history; k2 signs now and k1 is kept for the logs alone: the snapshot
    written then names k1 retired, so an entry k1 signs after it (a leaked key) is refused by
    a start-up that reads from that snapshot on, though it sees no marker before it."""
    name = Namespace(namespace).name(stream.name)
    for keys in ((K1, None), (K2, K1)):
        bus = make_bus(amqp_url, namespace, RETENTION, guard(*keys))
        await bus.start()
        try:
            writer = Counter(bus, stream, every=10)
            await writer.log.open()
            await writer.add(3)
            await writer.log.stop()
        finally:
            await bus.stop()
    forged = Envelope.wrap(Added(n=1000), source="vsm/test")
    body = forged.model_dump_json().encode()
    keyring = parse_keyring(K1)
    assert keyring is not None
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        headers: dict[str, Any] = keyring.sign(body, "", name)
        await channel.default_exchange.publish(
            aio_pika.Message(body, headers=headers, message_id=forged.id), routing_key=name
        )

    bus = make_bus(amqp_url, namespace, RETENTION, guard(K2, K1))
    await bus.start()
    try:
        reader = Counter(bus, stream)
        with pytest.raises(RefusedEntry, match="after its retirement"):
            await reader.log.open()
    finally:
        await bus.stop()
