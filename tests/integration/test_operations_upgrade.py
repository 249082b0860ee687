"""An agent queue declared by an earlier version of operations (its dead letters routed by the
queue's own name, not by the shared DLQ's) is kept when the agent is declared again at start-up:
its messages stay, and what the broker dead-letters from it still reaches the shared DLQ."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.support.cleanup import delete_namespace
from vsm.contract import topology
from vsm.contract.operations import AGENT_DEAD_LETTERS, earlier_command_queue, results_exchange
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.operations.wiring import declare_agent, declare_shared

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

AGENT = "ag-earlier-1"


async def test_an_agent_queue_from_an_earlier_version_keeps_its_messages_and_dead_letters(
    amqp_url: str, namespace: str
) -> None:
    settings = ServiceSettings(
        amqp_url=amqp_url, vsm_namespace=namespace, instance_id="upgrade", log_format="console"
    )
    bus = Runtime("operations", settings).bus
    ns = Namespace(namespace).name
    queue = earlier_command_queue(AGENT)
    earlier = {**bus.queue(queue).arguments, "x-dead-letter-routing-key": ns(queue.name)}
    await bus.start()
    try:
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(ns(queue.name), durable=True, arguments=earlier)
            await channel.default_exchange.publish(
                aio_pika.Message(b'{"left": "by the earlier version"}'), ns(queue.name)
            )

            await declare_shared(bus)
            await declare_agent(bus, AGENT)  # raised PRECONDITION_FAILED before
            await declare_agent(bus, AGENT)  # and again: idempotent

            kept = await channel.declare_queue(ns(queue.name), passive=True)
            assert kept.declaration_result.message_count == 1
            # What the broker dead-letters from it (routed by the queue's name) is parked.
            dead_letter = await channel.get_exchange(ns(topology.DEAD_LETTER.name), ensure=False)
            await dead_letter.publish(aio_pika.Message(b"parked"), ns(queue.name), mandatory=True)
            dlq = await channel.get_queue(ns(AGENT_DEAD_LETTERS), ensure=False)
            parked = None
            for _ in range(50):
                if (parked := await dlq.get(no_ack=True, fail=False)) is not None:
                    break
                await asyncio.sleep(0.1)
            assert parked is not None
            assert parked.body == b"parked"
    finally:
        await bus.stop()
        await delete_namespace(
            amqp_url,
            namespace,
            queues=[queue.name, AGENT_DEAD_LETTERS],
            exchanges=[results_exchange(AGENT).name],
        )
