"""An agent queue declared by a version before partitions (its dead letters routed by the
queue's own name) is retired at start-up: unbound, so that the agent's commands reach its
partition; deleted when empty; kept with its messages otherwise, and what the broker
dead-letters from it still reaches the shared DLQ."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.support.cleanup import delete_namespace
from vsm.contract import topology
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    earlier_command_queue,
    partition_of,
    partition_queue,
    results_exchange,
)
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.operations.wiring import declare_agent, declare_shared, retire_earlier_queue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEPT, EMPTY = "ag-earlier-1", "ag-earlier-2"
PARTITIONS = 4


async def test_an_agent_queue_from_an_earlier_version_is_unbound_and_kept_only_with_messages(
    amqp_url: str, namespace: str
) -> None:
    settings = ServiceSettings(
        amqp_url=amqp_url, vsm_namespace=namespace, instance_id="upgrade", log_format="console"
    )
    bus = Runtime("operations", settings).bus
    ns = Namespace(namespace).name
    kept, empty = earlier_command_queue(KEPT), earlier_command_queue(EMPTY)
    earlier = {**bus.queue(kept).arguments, "x-dead-letter-routing-key": ns(kept.name)}
    await bus.start()
    try:
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            for queue in (kept, empty):
                declared = await channel.declare_queue(
                    ns(queue.name), durable=True, arguments=earlier
                )
                for binding in queue.bindings:
                    await declared.bind(ns(binding.exchange.name), binding.routing_key)
            await channel.default_exchange.publish(
                aio_pika.Message(b'{"left": "by the earlier version"}'), ns(kept.name)
            )

            await declare_shared(bus, PARTITIONS)
            for agent in (KEPT, EMPTY):
                await retire_earlier_queue(bus, agent)
                await declare_agent(bus, agent, partition_of(agent, PARTITIONS))
            await retire_earlier_queue(bus, KEPT)  # again: harmless

            held = await channel.declare_queue(ns(kept.name), passive=True)
            assert held.declaration_result.message_count == 1
            gone = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await gone.declare_queue(ns(empty.name), passive=True)

            # A command now reaches the agent's partition, not the earlier queue.
            commands = await channel.get_exchange(ns(topology.S1_COMMANDS.name), ensure=False)
            await commands.publish(aio_pika.Message(b"now"), f"worker.{KEPT}.process_data")
            partition = ns(partition_queue(partition_of(KEPT, PARTITIONS)).name)
            routed = await channel.declare_queue(partition, passive=True)
            assert routed.declaration_result.message_count == 1
            held = await channel.declare_queue(ns(kept.name), passive=True)
            assert held.declaration_result.message_count == 1

            # What the broker dead-letters from it (routed by the queue's name) is parked.
            dead_letter = await channel.get_exchange(ns(topology.DEAD_LETTER.name), ensure=False)
            await dead_letter.publish(aio_pika.Message(b"parked"), ns(kept.name), mandatory=True)
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
            queues=[
                kept.name,
                empty.name,
                AGENT_DEAD_LETTERS,
                *(partition_queue(k).name for k in range(PARTITIONS)),
            ],
            exchanges=[results_exchange(a).name for a in (KEPT, EMPTY)],
        )
