"""A state journal on a real broker (`vsm.kit.journal`): only changes are written, a restart
reads the last snapshot back however many starts came after it, and an entry that does not
verify stops the read-back when it comes after the last snapshot, not before; a service's
journal (`service_journal`) is marked with the instance its settings name."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.journal import JournalMark
from vsm.contract.message import Message
from vsm.kit.bus import Bus
from vsm.kit.deadletter import MessageGuard
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.journal import FIRST_SPAN, StateJournal, append, read_log, service_journal
from vsm.kit.names import Namespace
from vsm.kit.replay import ReplayGuard
from vsm.kit.signing import parse_keyring
from vsm.kit.telemetry import create_telemetry

pytestmark = pytest.mark.integration

SECRET = base64.b64encode(b"journal-key-0123456789").decode()


class Tally(Message):
    """A tiny state: what a test journal keeps."""

    TYPE: ClassVar[str] = "vsm.test.journal.tally.v1"

    count: int


@pytest.fixture
async def bus(amqp_url: str, namespace: str) -> AsyncIterator[Bus]:
    """A bus that signs what it publishes and checks what it reads, as a keyed service's."""
    keyring = parse_keyring(f"k1:{SECRET}")
    assert keyring is not None
    guard = MessageGuard("test", keyring, ReplayGuard(300, 30), CollectorRegistry())
    broker = RabbitBroker(amqp_url, logger=logging.getLogger("test"), log_level=logging.DEBUG)
    bus = Bus(
        broker,
        service="test",
        namespace=Namespace(namespace),
        vsm_id="root",
        telemetry=create_telemetry("test"),
        request_timeout_s=5,
        guard=guard,
    )
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def stream(amqp_url: str, namespace: str) -> AsyncIterator[topology.Queue]:
    journal = topology.Queue(f"test.journal.{secrets.token_hex(4)}", kind="stream")
    yield journal
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await (await connection.channel()).queue_delete(Namespace(namespace).name(journal.name))


@dataclass(frozen=True)
class JournalSettings:
    """The two settings of a service that name its journal (`vsm.kit.journal.JournalSettings`)."""

    instance_id: str = "intelligence-7"
    journal_replay_timeout_s: float = 20.0


def journal(bus: Bus, stream: topology.Queue, state: list[Tally]) -> StateJournal[Tally]:
    return StateJournal(bus, stream, Tally, lambda: state[0], instance="test", timeout_s=20)


async def reopened(bus: Bus, stream: topology.Queue) -> list[Tally]:
    """What a restarted service's journal gives back."""
    restored: list[Tally] = []
    await journal(bus, stream, [Tally(count=-1)]).open(restored.append)
    return restored


async def unsigned(amqp_url: str, bus: Bus, stream: topology.Queue, body: Message) -> None:
    envelope = Envelope.wrap(body, source="vsm/test")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=envelope.id),
            routing_key=bus.namespace.name(stream.name),
        )


async def test_only_changes_are_written_and_a_restart_reads_the_last_one(
    bus: Bus, stream: topology.Queue
) -> None:
    state = [Tally(count=0)]
    kept = journal(bus, stream, state)
    restored: list[Tally] = []
    assert await kept.open(restored.append) is None
    assert restored == []  # a new journal restores nothing

    assert await kept.keep() is True
    assert await kept.keep() is False  # unchanged: nothing written
    state[0] = Tally(count=2)
    assert await kept.keep() is True
    assert kept.written == 2

    assert await reopened(bus, stream) == [Tally(count=2)]


async def test_the_last_snapshot_is_found_behind_many_starts_that_wrote_none(
    bus: Bus, stream: topology.Queue
) -> None:
    state = [Tally(count=7)]
    kept = journal(bus, stream, state)
    await kept.open(lambda _: None)
    await kept.keep()
    for _ in range(FIRST_SPAN * 8 + 5):  # starts that stopped before writing their snapshot
        await append(bus, stream, JournalMark(instance="test", live_keys=bus.live_key_ids()))

    assert await reopened(bus, stream) == [Tally(count=7)]


async def test_an_entry_that_does_not_verify_stops_the_read_back_only_after_the_last_snapshot(
    amqp_url: str, bus: Bus, stream: topology.Queue
) -> None:
    state = [Tally(count=1)]
    kept = journal(bus, stream, state)
    await kept.open(lambda _: None)
    await kept.keep()
    await unsigned(amqp_url, bus, stream, Tally(count=1000))  # forged, then overwritten
    state[0] = Tally(count=3)
    await kept.keep()
    assert await reopened(bus, stream) == [Tally(count=3)]

    await unsigned(amqp_url, bus, stream, Tally(count=2000))  # forged, the latest
    with pytest.raises(RefusedEntry, match=rf"log {stream.name}, entry at offset \d+ .*not signed"):
        await reopened(bus, stream)


async def test_a_service_journal_is_marked_with_its_instance_and_reads_back_its_state(
    bus: Bus, stream: topology.Queue
) -> None:
    settings = JournalSettings()
    state = [Tally(count=5)]
    kept = service_journal(settings, bus, stream, Tally, lambda: state[0])
    assert kept.timeout_s == settings.journal_replay_timeout_s
    await kept.open(lambda _: None)
    await kept.keep()
    end = await append(bus, stream, Tally(count=5))
    marks: list[str] = []

    def on_entry(_: int | None, envelope: Envelope[Any]) -> None:
        if isinstance(envelope.data, JournalMark):
            marks.append(envelope.data.instance)

    await read_log(bus, stream, until=end.id, on_entry=on_entry, timeout_s=20)
    assert marks == [settings.instance_id]
    assert await reopened(bus, stream) == [Tally(count=5)]
