"""RabbitMQ 3.10 poisons a channel whose first publish to a quorum queue meets a stale leader
record, and the kit's publishing channel (`vsm.kit.confirms`) gets through it.

On one private node, the queue's record is made to name a leader on a node that does not
exist, as it names the lost node in a cluster for the seconds between the node's loss and
the update of the record by the new leader. A channel whose first publish to the queue
comes then is nacked, and stays nacked after the queue's leader has repaired its record
(its next tick): every publish of that channel to the queue calls the lost node. The kit's
channel, nacked the same way, publishes again on a new channel and is confirmed once the
record is repaired. (The three-node test that met it: test_broker_cluster.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiormq import spec
from aiormq.exceptions import DeliveryError

from tests.support.cleanup import new_namespace
from tests.support.rabbitmq import PrivateRabbitMQ
from vsm.kit.confirms import ConfirmingChannel, nacked

pytestmark = [pytest.mark.integration, pytest.mark.fault]

LOST = "vsm-lost@localhost"
"""A node that does not exist: RabbitMQ's call to it fails as a call to a dead node does."""
REPAIR_S = 30.0
"""The queue's leader repairs its record at its next tick (every 5 s by default)."""


def leader(node: PrivateRabbitMQ, queue: str) -> str:
    """The node the record of `queue` names as its leader's."""
    answer = node.ctl(
        "eval",
        f'{{ok, Q}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"{queue}">>)), '
        "{_, Node} = amqqueue:get_pid(Q), Node.",
    )
    return answer.strip().strip("'")


def stale_leader(node: PrivateRabbitMQ, queue: str) -> None:
    """Make the record of quorum queue `queue` name its leader on the node `LOST`."""
    node.ctl(
        "eval",
        f'QName = rabbit_misc:r(<<"/">>, queue, <<"{queue}">>), '
        "{ok, Q} = rabbit_amqqueue:lookup(QName), {RaName, _} = amqqueue:get_pid(Q), "
        "rabbit_misc:execute_mnesia_transaction(fun() -> rabbit_amqqueue:update(QName, "
        f"fun(Q1) -> amqqueue:set_pid(Q1, {{RaName, '{LOST}'}}) end) end), ok.",
    )


async def repaired(node: PrivateRabbitMQ, queue: str) -> None:
    deadline = time.monotonic() + REPAIR_S
    while await asyncio.to_thread(leader, node, queue) == LOST:
        assert time.monotonic() < deadline, f"{queue}'s record still names {LOST}"
        await asyncio.sleep(0.5)


@pytest.fixture
async def connection(own_node: PrivateRabbitMQ) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(own_node.url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def queue(connection: AbstractRobustConnection) -> AsyncIterator[str]:
    channel = await connection.channel()
    declared = await channel.declare_queue(
        f"{new_namespace()}.stale", durable=True, arguments={"x-queue-type": "quorum"}
    )
    try:
        yield declared.name
    finally:
        await declared.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_a_channel_first_publishing_to_a_stale_leader_is_nacked_for_good(
    own_node: PrivateRabbitMQ, connection: AbstractRobustConnection, queue: str
) -> None:
    await asyncio.to_thread(stale_leader, own_node, queue)
    channel = await connection.channel(publisher_confirms=True)
    with pytest.raises(DeliveryError) as first:
        await channel.default_exchange.publish(aio_pika.Message(b"1"), queue)
    assert nacked(first.value)
    await repaired(own_node, queue)
    with pytest.raises(DeliveryError) as later:  # the same channel, the record repaired
        await channel.default_exchange.publish(aio_pika.Message(b"2"), queue)
    assert nacked(later.value)
    fresh = await connection.channel(publisher_confirms=True)
    await fresh.default_exchange.publish(aio_pika.Message(b"3"), queue)  # confirmed
    await fresh.close()
    await channel.close()


async def test_the_kit_publishes_again_on_a_new_channel_until_the_record_is_repaired(
    own_node: PrivateRabbitMQ, connection: AbstractRobustConnection, queue: str
) -> None:
    await asyncio.to_thread(stale_leader, own_node, queue)
    publisher = ConfirmingChannel(pauses=(0.5,) * int(REPAIR_S / 0.5))
    await publisher.open(connection)
    await publisher.publish("", queue, b"1", spec.Basic.Properties(), mandatory=True)  # confirmed
    assert publisher.renewed >= 1  # nacked first
    assert await asyncio.to_thread(leader, own_node, queue) != LOST
    await publisher.close()
