"""An agent's own piece of the broker: its command queue, its results exchange, and its
binding into the agents' shared dead-letter queue."""

from __future__ import annotations

import contextlib

import aio_pika

from vsm.contract import topology
from vsm.contract.operations import command_queue, results_exchange
from vsm.kit.bus import Bus


async def declare_agent(bus: Bus, agent_id: str) -> None:
    """Declare (idempotently) the agent's queue, its dead-letter binding and results exchange.

    On a channel of its own, so that agents spawned at once are declared in parallel (one
    channel's requests are answered one after another)."""
    ns = bus.namespace.name
    queue = command_queue(agent_id)
    channel = await (await bus.broker.connect()).channel()
    async with channel:
        results = await channel.declare_exchange(
            ns(results_exchange(agent_id).name), aio_pika.ExchangeType.TOPIC, durable=True
        )
        aggregate = await channel.get_exchange(ns(topology.S1_RESULTS.name), ensure=False)
        await aggregate.bind(results, routing_key="#")
        dead_letters = await channel.declare_queue(
            ns(queue.dead_letter_queue), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_letters.bind(ns(topology.DEAD_LETTER.name), routing_key=ns(queue.name))
        declared = await channel.declare_queue(
            ns(queue.name), durable=True, arguments=bus.queue(queue).arguments
        )
        for binding in queue.bindings:
            await declared.bind(ns(binding.exchange.name), routing_key=binding.routing_key)


async def forget_agent(bus: Bus, agent_id: str) -> None:
    """Once a retired agent's queue is drained: delete it (if still empty) and stop routing
    its dead letters into the shared dead-letter queue (whose parked messages stay)."""
    ns = bus.namespace.name
    queue = command_queue(agent_id)
    connection = await bus.broker.connect()
    await delete_if_empty(connection, [ns(queue.name)])
    with contextlib.suppress(aio_pika.exceptions.AMQPError):
        channel = await connection.channel()
        async with channel:
            dead_letters = await channel.get_queue(ns(queue.dead_letter_queue), ensure=False)
            await dead_letters.unbind(ns(topology.DEAD_LETTER.name), routing_key=ns(queue.name))


async def unbind_agent(bus: Bus, agent_id: str) -> None:
    """Stop new commands reaching the agent: a publish for it is then returned as unroutable."""
    queue = command_queue(agent_id)
    declared = await bus.broker.declare_queue(bus.queue(queue))
    for binding in queue.bindings:
        source = await bus.broker.declare_exchange(bus.exchange(binding.exchange))
        await declared.unbind(source, routing_key=binding.routing_key)


async def delete_if_empty(connection: aio_pika.abc.AbstractConnection, names: list[str]) -> None:
    """Delete each queue found empty (quorum queues refuse `if_empty`, so count first)."""
    for name in names:
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            channel = await connection.channel()
            async with channel:
                queue = await channel.declare_queue(name, passive=True)
                if queue.declaration_result.message_count == 0:
                    await channel.queue_delete(name)
