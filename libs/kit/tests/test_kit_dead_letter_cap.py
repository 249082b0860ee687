"""Dead-letter queues are capped on a real broker: past the cap the broker refuses a new
dead letter (`reject-publish`), the kit counts and raises it (its caller nacks: nothing is
acked and lost), and a queue declared before the cap (an earlier version) is kept as it was."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker

from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.errors import Unprocessable
from vsm.kit.bus import Bus
from vsm.kit.dead_letters import DeadLetters
from vsm.kit.names import Namespace
from vsm.kit.telemetry import create_telemetry

pytestmark = pytest.mark.integration

EXCHANGE = topology.Exchange("test.cap.work", "direct")
QUEUE = topology.Queue("test.cap.queue", (topology.Binding(EXCHANGE, "work"),))
CAP = topology.DeadLetterCap(max_messages=2)


async def started(amqp_url: str, namespace: str) -> Bus:
    broker = RabbitBroker(amqp_url, logger=logging.getLogger("test"), log_level=logging.DEBUG)
    bus = Bus(
        broker,
        service="test",
        namespace=Namespace(namespace),
        vsm_id="root",
        telemetry=create_telemetry("test"),
        request_timeout_s=5,
        dead_letter_cap=CAP,
    )
    await bus.start()
    await bus.declare(QUEUE)
    await broker.declare_exchange(bus.exchange(EXCHANGE))
    return bus


@pytest.fixture
async def capped_bus(amqp_url: str, namespace: str) -> AsyncIterator[Bus]:
    bus = await started(amqp_url, namespace)
    yield bus
    await bus.stop()


async def park(bus: Bus, probe: Probe, n: int) -> None:
    """Message `n` sent to the work queue, taken off it and dead-lettered."""
    exchange = await probe.channel.get_exchange(bus.namespace.name(EXCHANGE.name))
    await exchange.publish(aio_pika.Message(b'{"n": %d}' % n, message_id=f"m{n}"), "work")
    taken = await probe.get(QUEUE.name)
    queue = bus.namespace.name(QUEUE.name)
    await bus.dead_letter(taken, queue, Unprocessable("invalid_schema", "why"))


def refused(bus: Bus) -> float:
    value = bus.telemetry.registry.get_sample_value(
        "vsm_dead_letters_refused_total",
        {"service": "test", "queue": bus.namespace.name(QUEUE.name)},
    )
    return value or 0.0


async def test_past_its_cap_a_dead_letter_queue_refuses_and_the_refusal_is_counted(
    capped_bus: Bus, probe: Probe
) -> None:
    """A quorum queue refuses once it is over its length: it takes one past the cap."""
    letters = DeadLetters(capped_bus)
    for n in range(1, CAP.max_messages + 2):
        await park(capped_bus, probe, n)
    assert refused(capped_bus) == 0
    for n in (4, 5):
        with pytest.raises(DeliveryError):
            await park(capped_bus, probe, n)
    assert refused(capped_bus) == 2
    assert await letters.count(QUEUE.dead_letter_queue) == CAP.max_messages + 1
    parked = [x.message_id for x in await letters.peek(QUEUE.dead_letter_queue, 9)]
    assert parked == ["m3", "m2", "m1"]


async def test_a_dead_letter_queue_declared_before_the_cap_is_kept_with_its_letters(
    amqp_url: str, namespace: str, probe: Probe
) -> None:
    ns = Namespace(namespace).name
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        name = ns(QUEUE.dead_letter_queue)
        await channel.queue_delete(name)  # the probe's start declared nothing of this name
        old = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        await channel.default_exchange.publish(aio_pika.Message(b"{}", message_id="old"), name)
        bus = await started(amqp_url, namespace)  # no PRECONDITION_FAILED stops it
        try:
            for n in range(1, 6):  # uncapped, as it was declared: all five are taken
                await park(bus, probe, n)
            assert refused(bus) == 0
            assert await DeadLetters(bus).count(QUEUE.dead_letter_queue) == 6
        finally:
            await bus.stop()
        assert old.name == name
