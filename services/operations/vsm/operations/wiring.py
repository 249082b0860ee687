"""The agents' piece of the broker: the partition queues and the agents' shared dead-letter
queue, declared once at start-up; per agent only its one route into its partition (a binding)
and its results exchange. Declared through the kit's run-time declarations
(`Bus.declarations`), which agents spawned at once share."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from vsm.contract import topology
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    AgentInfo,
    agent_routes,
    earlier_command_queue,
    earlier_routes,
    partition_of,
    partition_queue,
    pool_queue,
    results_exchange,
)
from vsm.kit.bus import Bus

log = structlog.get_logger("vsm.operations.wiring")


def partition_for(agent: AgentInfo, partitions: int) -> int:
    """The partition serving `agent`: the one the registry recorded, while it exists; else
    (an agent from before partitions, or fewer partitions configured now) the stable rule."""
    if agent.partition is not None and agent.partition < partitions:
        return agent.partition
    return partition_of(agent.agent_id, partitions)


async def declare_shared(bus: Bus, partitions: int) -> None:
    """The partition queues and the agents' shared dead-letter queue, bound to the
    dead-letter exchange once."""
    await bus.declarations.dead_letters(AGENT_DEAD_LETTERS, AGENT_DEAD_LETTERS)
    for partition in range(partitions):
        await bus.declarations.queue(partition_queue(partition))


Lane = tuple[str | None, int]
"""Where an agent is served: its pool (the type whose agent hosts serve it; None for
operations' own partitions) and its partition there."""


def lane_of(agent: AgentInfo, partitions: int, type_partitions: int) -> Lane:
    """The pool and partition serving `agent`. A hosted type's agent keeps the partition
    recorded at spawn (hosts and operations may be configured apart)."""
    if agent.pool is not None:
        if agent.partition is not None:
            return agent.pool, agent.partition
        return agent.pool, partition_of(agent.agent_id, type_partitions)
    return None, partition_for(agent, partitions)


async def declare_pool(bus: Bus, agent_type: str, type_partitions: int) -> None:
    """The partition queues of a type that agent hosts offer (idempotent)."""
    await bus.declarations.dead_letters(AGENT_DEAD_LETTERS, AGENT_DEAD_LETTERS)
    for partition in range(type_partitions):
        await bus.declarations.queue(pool_queue(agent_type, partition))


async def declare_agent(bus: Bus, agent_id: str, partition: int, pool: str | None = None) -> None:
    """Declare (idempotently) the agent's results exchange bound into `vsm.s1.results`, and
    bind its one route into its partition: no queue of its own. The route is bound while the
    exchange is declared and joined (two channels at once: it needs nothing of theirs)."""
    ns = bus.namespace.name
    results = ns(results_exchange(agent_id).name)

    async def exchange() -> None:
        await bus.declarations.exchange(results)
        await bus.declarations.join(ns(topology.S1_RESULTS.name), results, "#")

    await asyncio.gather(exchange(), bus.declarations.bind(agent_routes(agent_id, partition, pool)))


async def forget_agent(bus: Bus, agent_id: str) -> None:
    """Delete a retired agent's results exchange with its bindings, so that nothing of a
    terminated agent stays on the broker (one gone already is no error); raises when the
    deletion fails."""
    await bus.declarations.delete_exchange(results_exchange(agent_id).name)


async def unbind_agent(bus: Bus, agent_id: str, lane: Lane, *, earlier: bool = True) -> None:
    """Stop new commands reaching the agent: a publish for it is then returned as unroutable.
    With `earlier` (an agent spawned by an earlier release: no `one_route` in its record),
    the bindings that release gave it besides (`earlier_routes`) go at the same time."""
    pool, partition = lane
    routes = [agent_routes(agent_id, partition, pool)]
    if earlier:
        routes.append(earlier_routes(agent_id, partition, pool))
    await asyncio.gather(*map(bus.declarations.unbind, routes))


async def retire_earlier_queue(bus: Bus, agent_id: str) -> None:
    """An agent queue declared by a version before partitions: unbound, so that what is sent
    to the agent now reaches its partition, and deleted once empty. One still holding
    messages is kept with them (a warning names it), its dead letters still parked in the
    shared dead-letter queue as that version routed them."""
    queue = earlier_command_queue(agent_id)
    try:
        await bus.declarations.unbind(queue)
    except Exception:  # no such queue: the usual case
        return
    await bus.declarations.dead_letters(AGENT_DEAD_LETTERS, queue.name)
    with contextlib.suppress(Exception):  # not empty: kept
        await bus.declarations.delete(queue.name, if_empty=True)
    log.warning("agent_queue_from_earlier_version", queue=queue.name)
