"""A publish the broker nacks (`vsm.kit.confirms`), on a real broker: it is published again on
a new channel once the queue takes it, and raised when the queue never does.

A quorum queue full with `reject-publish` is how a test makes the broker nack: a channel's
first publish to it registers the channel as an enqueuer, and the queue answers that it is
full. (The nack the kit is built for, RabbitMQ 3.10's channel that keeps calling a lost
leader, takes a cluster and a SIGKILL: tests/faults/test_broker_cluster.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection, AbstractRobustQueue
from aiormq import spec
from aiormq.exceptions import DeliveryError

from vsm.kit.confirms import ConfirmingChannel, nacked

pytestmark = pytest.mark.integration

PLAIN = spec.Basic.Properties()


@pytest.fixture
async def full_queue(
    connection: AbstractRobustConnection, namespace: str
) -> AsyncIterator[AbstractRobustQueue]:
    """A quorum queue of one message that rejects publishes when over it, holding two (the
    queue turns an enqueuer away once it holds more than its length)."""
    channel = await connection.channel()
    queue = await channel.declare_queue(
        f"{namespace}.full",
        durable=True,
        arguments={"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"},
    )
    filling = ConfirmingChannel()
    await filling.open(connection)
    for body in (b"first", b"over"):
        await filling.publish("", queue.name, body, PLAIN, mandatory=True)
    await filling.close()
    try:
        yield queue
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_a_nacked_publish_goes_again_on_a_new_channel_once_the_queue_takes_it(
    connection: AbstractRobustConnection, full_queue: AbstractRobustQueue
) -> None:
    publisher = ConfirmingChannel(pauses=(0.2,) * 20)
    await publisher.open(connection)
    first = publisher.channel
    sending = asyncio.create_task(
        publisher.publish("", full_queue.name, b"second", PLAIN, mandatory=True)
    )
    while publisher.renewed == 0:  # nacked: the queue is full
        assert not sending.done(), sending
        await asyncio.sleep(0.05)
    taken = await full_queue.get(timeout=5)
    assert taken.body == b"first"
    await taken.ack()
    await asyncio.wait_for(sending, timeout=10)  # confirmed on a new channel
    assert publisher.channel is not first
    assert [(await full_queue.get(timeout=5)).body for _ in range(2)] == [b"over", b"second"]
    await publisher.close()


async def test_a_nack_that_lasts_is_raised_after_the_pauses(
    connection: AbstractRobustConnection, full_queue: AbstractRobustQueue
) -> None:
    publisher = ConfirmingChannel(pauses=(0.05, 0.05))
    await publisher.open(connection)
    with pytest.raises(DeliveryError) as raised:
        await publisher.publish("", full_queue.name, b"more", PLAIN, mandatory=True)
    assert nacked(raised.value)
    assert publisher.renewed == 2
    await publisher.close()


async def test_an_unroutable_publish_is_raised_at_once_and_keeps_its_channel(
    connection: AbstractRobustConnection, namespace: str
) -> None:
    publisher = ConfirmingChannel()
    await publisher.open(connection)
    channel = publisher.channel
    with pytest.raises(DeliveryError) as raised:
        await publisher.publish("", f"{namespace}.nowhere", b"x", PLAIN, mandatory=True)
    assert not nacked(raised.value)
    assert publisher.channel is channel
    assert publisher.renewed == 0
    await publisher.close()
