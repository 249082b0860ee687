"""Dead-letter queues read and emptied through the kit, and the transient observer, on a real
broker: counts, the latest with their reason, a requeue that reaches the original queue
signed anew, a security refusal that is never requeued, a discard."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry

from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.errors import Unprocessable
from vsm.contract.health import Ping
from vsm.kit.bus import Bus
from vsm.kit.dead_letters import DeadLetters, NoSuchDeadLetter, NotRequeueable
from vsm.kit.deadletter import REASON_HEADER, MessageGuard
from vsm.kit.names import Namespace
from vsm.kit.observer import Observer
from vsm.kit.replay import ReplayGuard
from vsm.kit.signing import KEY_ID_HEADER, SIGNATURE_HEADER, parse_keyring
from vsm.kit.telemetry import create_telemetry

pytestmark = pytest.mark.integration

EXCHANGE = topology.Exchange("test.dl.work", "direct")
QUEUE = topology.Queue("test.dl.queue", (topology.Binding(EXCHANGE, "work"),))
SECRET = base64.b64encode(b"0123456789abcdef0123").decode()


@pytest.fixture
async def signing_bus(amqp_url: str, namespace: str) -> AsyncIterator[Bus]:
    """A bus that signs what it publishes, as a service with `VSM_SIGNING_KEYS` does."""
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
    await bus.declare(QUEUE)
    await broker.declare_exchange(bus.exchange(EXCHANGE))
    queue = await broker.declare_queue(bus.queue(QUEUE))
    await queue.bind(bus.namespace.name(EXCHANGE.name), routing_key="work")
    yield bus
    await bus.stop()


async def park(bus: Bus, probe: Probe, reason: str, body: bytes = b'{"id": "x"}') -> str:
    """A message sent to the work queue, taken off it and dead-lettered with `reason`."""
    message_id = f"m-{reason}-{id(body)}"
    exchange = await probe.channel.get_exchange(bus.namespace.name(EXCHANGE.name))
    await exchange.publish(aio_pika.Message(body, message_id=message_id), "work")
    taken = await probe.get(QUEUE.name)
    await bus.dead_letter(taken, bus.namespace.name(QUEUE.name), Unprocessable(reason, "why"))
    return message_id


async def settles_at(letters: DeadLetters, queue: str, count: int) -> None:
    """`queue` holds `count` dead letters once the broker has applied what was just acked or
    given back (a quorum queue applies a channel's returns through its log, so a count read
    at once may not show them yet)."""

    async def reached() -> bool:
        return await letters.count(queue) == count

    await eventually(reached, timeout=10, interval=0.1, what=f"{count} dead letters on {queue}")


async def test_a_dead_letter_is_counted_shown_and_requeued_signed_anew(
    signing_bus: Bus, probe: Probe
) -> None:
    letters = DeadLetters(signing_bus)
    dlq = QUEUE.dead_letter_queue
    first = await park(signing_bus, probe, "invalid_schema", b'{"n": 1}')
    second = await park(signing_bus, probe, "unknown_type", b'{"n": 2}')
    await settles_at(letters, dlq, 2)
    latest = await letters.peek(dlq, 5)
    assert [x.message_id for x in latest] == [second, first]  # newest first
    assert (latest[1].reason, latest[1].exchange, latest[1].routing_key) == (
        "invalid_schema",
        EXCHANGE.name,
        "work",
    )
    await settles_at(letters, dlq, 2)  # reading returned them

    requeued = await letters.requeue(dlq, first)
    assert requeued.message_id == first
    back = await probe.get(QUEUE.name)
    assert (back.message_id, back.body) == (first, b'{"n": 1}')
    headers = back.headers or {}
    assert REASON_HEADER not in headers
    assert headers[KEY_ID_HEADER] == "k1"
    assert signing_bus.guard is not None
    assert signing_bus.guard.verify(back, "test") is None  # signed again, and valid
    assert headers[SIGNATURE_HEADER] != ""
    await settles_at(letters, dlq, 1)


async def test_a_security_refusal_is_never_requeued_but_can_be_discarded(
    signing_bus: Bus, probe: Probe
) -> None:
    letters = DeadLetters(signing_bus)
    dlq = QUEUE.dead_letter_queue
    forged = await park(signing_bus, probe, "bad_signature")
    with pytest.raises(NotRequeueable):
        await letters.requeue(dlq, forged)
    await settles_at(letters, dlq, 1)  # still there
    discarded = await letters.discard(dlq, forged)
    assert discarded.reason == "bad_signature"
    await settles_at(letters, dlq, 0)
    with pytest.raises(NoSuchDeadLetter):
        await letters.discard(dlq, forged)


async def test_an_absent_queue_is_told_apart(probe: Probe) -> None:
    letters = DeadLetters(probe.bus)
    assert await letters.counts(["test.nowhere.dlq", "vsm.system5.policy.dlq"]) == {
        "test.nowhere.dlq": None,
        "vsm.system5.policy.dlq": 0,
    }
    with pytest.raises(NoSuchDeadLetter):
        await letters.requeue("test.nowhere.dlq", "m-1")


async def test_an_observer_hears_its_exchanges_while_it_runs(probe: Probe) -> None:
    heard: list[tuple[str, str]] = []
    observer = Observer(
        probe.bus,
        [topology.Binding(topology.OPERATORS, "alert.#")],
        lambda exchange, key, body: heard.append((exchange, key)),
    )
    await observer.start()
    await probe.bus.publish(topology.OPERATORS, Ping(), routing_key="alert.warning")
    await probe.bus.publish(topology.OPERATORS, Ping(), routing_key="ack.alert", mandatory=False)
    for _ in range(50):
        if heard:
            break
        await asyncio.sleep(0.05)
    assert heard == [(topology.OPERATORS.name, "alert.warning")]
    await observer.stop()
    connection = await probe.bus.broker.connect()
    check = await connection.channel()
    with pytest.raises(aio_pika.exceptions.ChannelClosed):  # the broker deleted its queue
        await check.declare_queue(observer.queue, passive=True)


async def test_an_observer_shows_no_message_whose_signature_does_not_hold(
    signing_bus: Bus, probe: Probe
) -> None:
    heard: list[bytes] = []
    observer = Observer(
        signing_bus,
        [topology.Binding(topology.OPERATORS, "alert.#")],
        lambda exchange, key, body: heard.append(body),
    )
    await observer.start()
    try:
        forged = b'{"forged": true}'
        await probe.publish_raw(topology.OPERATORS.name, forged, "alert.warning")
        signed = await signing_bus.publish(topology.OPERATORS, Ping(), routing_key="alert.warning")
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the forgery was published first: it had its chance
        assert [body for body in heard if signed.id.encode() in body] == heard
        assert len(heard) == 1
    finally:
        await observer.stop()
