"""An agent's own piece of the broker: its command queue and its results exchange; and the
agents' shared dead-letter queue, declared once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractQueue

from vsm.contract import topology
from vsm.contract.operations import AGENT_DEAD_LETTERS, command_queue, results_exchange
from vsm.kit.bus import Bus

log = structlog.get_logger("vsm.operations.wiring")


class Channels:
    """Channels kept open for declaring agents: agents spawned at once are declared in
    parallel (one channel's requests are answered one after another), without opening and
    closing a channel per agent. A channel closed by a refusal is dropped, not reused."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._idle: list[AbstractChannel] = []

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        while self._idle:
            channel = self._idle.pop()
            if not channel.is_closed:
                break
        else:
            channel = await (await self.bus.broker.connect()).channel(publisher_confirms=False)
        try:
            yield channel
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        if not channel.is_closed:
            self._idle.append(channel)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)


async def declare_shared(bus: Bus) -> None:
    """The agents' shared dead-letter queue, bound to the dead-letter exchange once."""
    await bus.declare_dead_letters(AGENT_DEAD_LETTERS, AGENT_DEAD_LETTERS)


async def declare_agent(bus: Bus, channels: Channels, agent_id: str) -> None:
    """Declare (idempotently) the agent's queue with its bindings, and its results exchange
    bound into `vsm.s1.results`."""
    ns = bus.namespace.name
    queue = command_queue(agent_id)
    async with channels.channel() as channel:
        results = await channel.declare_exchange(
            ns(results_exchange(agent_id).name), aio_pika.ExchangeType.TOPIC, durable=True
        )
        aggregate = await channel.get_exchange(ns(topology.S1_RESULTS.name), ensure=False)
        await aggregate.bind(results, routing_key="#")
    try:
        async with channels.channel() as channel:
            declared = await channel.declare_queue(
                ns(queue.name), durable=True, arguments=bus.queue(queue).arguments
            )
            await bind(bus, declared, queue)
    except aio_pika.exceptions.ChannelPreconditionFailed:
        await keep_earlier_queue(bus, channels, queue)


async def bind(bus: Bus, declared: AbstractQueue, queue: topology.Queue) -> None:
    for binding in queue.bindings:
        await declared.bind(bus.namespace.name(binding.exchange.name), binding.routing_key)


async def keep_earlier_queue(bus: Bus, channels: Channels, queue: topology.Queue) -> None:
    """An agent queue declared by an earlier version (its dead letters routed by the queue's
    own name, not the shared DLQ's): keep it, with its messages, and bind the shared DLQ by
    that name too, as that version did, so that nothing it dead-letters is dropped."""
    ns = bus.namespace.name
    async with channels.channel() as channel:
        declared = await channel.declare_queue(ns(queue.name), passive=True)
        await bind(bus, declared, queue)
        dead_letters = await channel.get_queue(ns(AGENT_DEAD_LETTERS), ensure=False)
        await dead_letters.bind(ns(topology.DEAD_LETTER.name), routing_key=ns(queue.name))
    log.warning("agent_queue_from_earlier_version", queue=queue.name)


async def forget_agent(bus: Bus, agent_id: str) -> None:
    """Once a retired agent's queue is drained: delete it if still empty (its dead letters
    stay in the shared dead-letter queue), and its results exchange with its bindings, so
    that nothing of a terminated agent stays on the broker."""
    connection = await bus.broker.connect()
    await delete_if_empty(connection, [bus.namespace.name(command_queue(agent_id).name)])
    with contextlib.suppress(aio_pika.exceptions.AMQPError):
        channel = await connection.channel()
        async with channel:
            await channel.exchange_delete(bus.namespace.name(results_exchange(agent_id).name))


async def unbind_agent(bus: Bus, channels: Channels, agent_id: str) -> None:
    """Stop new commands reaching the agent: a publish for it is then returned as unroutable."""
    ns = bus.namespace.name
    queue = command_queue(agent_id)
    async with channels.channel() as channel:
        declared = await channel.get_queue(ns(queue.name), ensure=False)
        for binding in queue.bindings:
            await declared.unbind(ns(binding.exchange.name), routing_key=binding.routing_key)


async def delete_if_empty(connection: aio_pika.abc.AbstractConnection, names: list[str]) -> None:
    """Delete each queue found empty (quorum queues refuse `if_empty`, so count first)."""
    for name in names:
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            channel = await connection.channel()
            async with channel:
                queue = await channel.declare_queue(name, passive=True)
                if queue.declaration_result.message_count == 0:
                    await channel.queue_delete(name)
