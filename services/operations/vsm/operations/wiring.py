"""An agent's own piece of the broker: its command queue (+ DLQ) and its results exchange."""

from __future__ import annotations

import contextlib

import aio_pika
from faststream.rabbit import QueueType, RabbitQueue

from vsm.contract import topology
from vsm.contract.operations import command_queue, results_exchange
from vsm.kit.bus import Bus


async def declare_agent(bus: Bus, agent_id: str) -> None:
    """Declare (idempotently) the agent's queue, its dead-letter queue and results exchange."""
    ns = bus.namespace.name
    queue = command_queue(agent_id)
    results = await bus.broker.declare_exchange(bus.exchange(results_exchange(agent_id)))
    aggregate = await bus.broker.declare_exchange(bus.exchange(topology.S1_RESULTS))
    await aggregate.bind(results, routing_key="#")
    dead_letter = await bus.broker.declare_exchange(bus.exchange(topology.DEAD_LETTER))
    dlq = await bus.broker.declare_queue(
        RabbitQueue(ns(queue.dead_letter_queue), queue_type=QueueType.QUORUM, durable=True)
    )
    await dlq.bind(dead_letter, routing_key=ns(queue.name))
    declared = await bus.broker.declare_queue(bus.queue(queue))
    for binding in queue.bindings:
        source = await bus.broker.declare_exchange(bus.exchange(binding.exchange))
        await declared.bind(source, routing_key=binding.routing_key)


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
