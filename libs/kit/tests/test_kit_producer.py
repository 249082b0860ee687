"""The kit's producer on a real broker: a reply goes to the requester's direct reply-to on a
channel without confirms; what must not be lost stays confirmed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from vsm.kit.producer import Producer

pytestmark = pytest.mark.integration

REPLY_TO = "amq.rabbitmq.reply-to"


@pytest.fixture
async def producer(connection: AbstractRobustConnection) -> AsyncIterator[Producer]:
    producer = Producer("vsm/test", None)
    await producer.start(connection)
    try:
        yield producer
    finally:
        await producer.stop()


async def asked(
    connection: AbstractRobustConnection, namespace: str, correlation_id: str
) -> tuple[AbstractChannel, asyncio.Queue[AbstractIncomingMessage], AbstractIncomingMessage]:
    """A requester that listens on its direct reply-to, and its request as a replier
    receives it (its `reply_to` the requester's own key)."""
    requester = await connection.channel()
    replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    await (await requester.get_queue(REPLY_TO, ensure=False)).consume(replies.put, no_ack=True)
    inbox = await requester.declare_queue(f"{namespace}.inbox", auto_delete=True)
    request = aio_pika.Message(b"question", reply_to=REPLY_TO, correlation_id=correlation_id)
    await requester.default_exchange.publish(request, inbox.name)
    received = await inbox.get(timeout=5)
    assert received.reply_to is not None
    assert received.reply_to != REPLY_TO
    return requester, replies, received


async def test_a_reply_reaches_the_requester_without_a_confirm(
    connection: AbstractRobustConnection, producer: Producer, namespace: str
) -> None:
    requester, replies, received = await asked(connection, namespace, "c-1")

    await producer.publish(
        "",
        received.reply_to,
        b"answer",
        mandatory=False,
        persist=False,
        confirmed=False,
        correlation_id=received.correlation_id,
    )

    reply = await asyncio.wait_for(replies.get(), timeout=5)
    assert (reply.body, reply.correlation_id) == (b"answer", "c-1")
    assert reply.delivery_mode == aio_pika.DeliveryMode.NOT_PERSISTENT
    await received.ack()
    await requester.close()


async def test_what_must_be_routed_is_always_confirmed(producer: Producer) -> None:
    with pytest.raises(ValueError, match="confirmed"):
        await producer.publish("", "anywhere", b"x", mandatory=True, confirmed=False)
    with pytest.raises(ValueError, match="default exchange"):
        await producer.publish("some.exchange", "key", b"x", mandatory=False, confirmed=False)


async def test_a_reply_to_a_forged_reply_to_does_not_stop_the_replies_after_it(
    connection: AbstractRobustConnection, producer: Producer, namespace: str
) -> None:
    """A reply-to is whatever the request said: one the broker refuses (a direct reply-to
    that names no consumer) must not take the channel of the replies after it down."""
    requester, replies, received = await asked(connection, namespace, "c-2")

    for forged in (f"{REPLY_TO}.forged", f"{REPLY_TO}.g2dkAA", received.reply_to + "x"):
        with contextlib.suppress(Exception):
            await producer.publish("", forged, b"lost", mandatory=False, confirmed=False)
    await asyncio.sleep(0.5)  # the broker's answer to the forged ones, if any, arrives
    await producer.publish(
        "", received.reply_to, b"answer", mandatory=False, confirmed=False, correlation_id="c-2"
    )

    reply = await asyncio.wait_for(replies.get(), timeout=10)
    assert (reply.body, reply.correlation_id) == (b"answer", "c-2")
    await received.ack()
    await requester.close()


async def test_a_publish_carries_its_properties_and_the_kits_own(
    connection: AbstractRobustConnection, producer: Producer, namespace: str
) -> None:
    channel = await connection.channel()
    inbox = await channel.declare_queue(f"{namespace}.inbox", auto_delete=True)
    before = datetime.now(UTC).replace(microsecond=0)
    await producer.publish(
        "",
        inbox.name,
        b"{}",
        mandatory=True,
        headers={"ce-type": "vsm.test"},
        message_id="m-1",
        correlation_id="c-1",
        type="vsm.test",
        priority=3,
        content_type="application/json",
        reply_to="somewhere",
        expiration=2.5,
    )
    message = await inbox.get(timeout=5)
    assert message.body == b"{}"
    assert message.headers == {"ce-type": "vsm.test"}
    assert (message.message_id, message.correlation_id, message.type) == ("m-1", "c-1", "vsm.test")
    assert (message.priority, message.content_type, message.reply_to) == (
        3,
        "application/json",
        "somewhere",
    )
    assert message.expiration == 2.5  # sent as "2500" ms
    assert message.app_id == "vsm/test"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.timestamp is not None
    assert message.timestamp >= before
    await message.ack()
    await channel.close()
