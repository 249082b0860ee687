"""Several broker addresses on real brokers: a client starts on the first node that answers, and
moves to another node when it loses its own, with its queues and consumers restored there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue
from yarl import URL

from tests.support.rabbitmq import PrivateRabbitMQ, free_ports
from vsm.kit.addresses import BrokerAddresses
from vsm.kit.runtime import RECONNECT_INTERVAL_S

pytestmark = pytest.mark.integration


@pytest.fixture
async def lost_node() -> AsyncIterator[PrivateRabbitMQ]:
    """A node of the test's own, to kill."""
    node = PrivateRabbitMQ()
    try:
        await asyncio.to_thread(node.start)
        yield node
    finally:
        await asyncio.to_thread(node.stop)


def broker_on(addresses: BrokerAddresses, reconnected: asyncio.Event) -> RabbitBroker:
    return addresses.rabbit_broker(
        reconnect_interval=RECONNECT_INTERVAL_S,
        on_reconnected=[lambda _: reconnected.set()],
        logger=logging.getLogger("vsm.test.addresses"),
        log_level=logging.DEBUG,
    )


async def port_of(broker: RabbitBroker) -> int | None:
    """The port of the node the broker's connection is on (`connect()` returns it once made)."""
    return (await broker.connect()).url.port


def first_port(amqp_url: str) -> int | None:
    return URL(BrokerAddresses(amqp_url).urls[0]).port


async def test_a_broker_starts_on_the_first_node_that_answers(amqp_url: str) -> None:
    (nobody,) = free_ports(1)
    addresses = BrokerAddresses(f"amqp://guest:guest@127.0.0.1:{nobody}/,{amqp_url}")
    broker = broker_on(addresses, asyncio.Event())
    try:
        connection = await addresses.connect_broker(broker)
        assert not connection.is_closed
        assert await port_of(broker) == first_port(amqp_url)
    finally:
        await broker.stop()


@pytest.mark.timeout(180)
async def test_a_broker_that_loses_its_node_moves_to_the_next_with_its_consumers(
    lost_node: PrivateRabbitMQ, amqp_url: str, namespace: str
) -> None:
    addresses = BrokerAddresses(f"{lost_node.url},{amqp_url}")
    reconnected = asyncio.Event()
    broker = broker_on(addresses, reconnected)
    received: asyncio.Queue[str] = asyncio.Queue()
    queue = RabbitQueue(f"{namespace}.addresses", auto_delete=True)

    @broker.subscriber(queue)
    async def take(body: str) -> None:
        await received.put(body)

    try:
        await addresses.connect_broker(broker)
        await broker.start()
        assert await port_of(broker) == lost_node.port
        await broker.publish("before", queue=queue)
        assert await asyncio.wait_for(received.get(), 10) == "before"

        await asyncio.to_thread(lost_node.kill)
        await asyncio.wait_for(reconnected.wait(), 60)
        assert await port_of(broker) == first_port(amqp_url)

        await broker.publish("after", queue=queue)
        assert await asyncio.wait_for(received.get(), 10) == "after"
    finally:
        await broker.stop()
