"""The private RabbitMQ node the tests fall back on: it starts, survives a kill, and stops."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.support.rabbitmq import PrivateRabbitMQ, alive, port_open

pytestmark = pytest.mark.integration

QUEUE = "vsm.test.private-rabbitmq"


async def declare(url: str) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})


async def publish_one(url: str, body: bytes) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=QUEUE, mandatory=True)


async def get_one(url: str) -> bytes:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, passive=True)
        message = await queue.get(timeout=5)
        await message.ack()
        return message.body


async def test_a_confirmed_message_survives_a_kill_and_the_node_stops_cleanly() -> None:
    node = PrivateRabbitMQ()
    try:
        await asyncio.to_thread(node.start)
        await declare(node.url)
        await asyncio.sleep(2)  # see PrivateRabbitMQ.kill: a brand-new quorum queue may not survive
        await publish_one(node.url, b"still here")

        killed = node.pids()
        assert len(killed) > 2  # the script, the VM and its helpers
        node.kill()
        assert not any(alive(pid) for pid in killed)
        assert not port_open(node.port)

        await asyncio.to_thread(node.restart)
        assert await get_one(node.url) == b"still here"
        stopped = node.pids()
    finally:
        await asyncio.to_thread(node.stop)

    assert not port_open(node.port)
    assert not any(alive(pid) for pid in stopped)
    assert node.directory is None
