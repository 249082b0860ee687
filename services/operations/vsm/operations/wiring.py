"""An agent's own piece of the broker: its command queue and its results exchange; and the
agents' shared dead-letter queue, declared once. Declared through the kit's run-time
declarations (`Bus.declarations`), which agents spawned at once share."""

from __future__ import annotations

import contextlib

import structlog

from vsm.contract import topology
from vsm.contract.operations import AGENT_DEAD_LETTERS, command_queue, results_exchange
from vsm.kit.bus import Bus
from vsm.kit.declarations import QueueMismatch

log = structlog.get_logger("vsm.operations.wiring")


async def declare_shared(bus: Bus) -> None:
    """The agents' shared dead-letter queue, bound to the dead-letter exchange once."""
    await bus.declarations.dead_letters(AGENT_DEAD_LETTERS, AGENT_DEAD_LETTERS)


async def declare_agent(bus: Bus, agent_id: str) -> None:
    """Declare (idempotently) the agent's queue with its bindings, and its results exchange
    bound into `vsm.s1.results`."""
    ns = bus.namespace.name
    results = ns(results_exchange(agent_id).name)
    await bus.declarations.exchange(results)
    await bus.declarations.join(ns(topology.S1_RESULTS.name), results, "#")
    queue = command_queue(agent_id)
    try:
        await bus.declarations.queue(queue)
    except QueueMismatch:
        await keep_earlier_queue(bus, queue)


async def keep_earlier_queue(bus: Bus, queue: topology.Queue) -> None:
    """An agent queue declared by an earlier version (its dead letters routed by the queue's
    own name, not the shared DLQ's): keep it, with its messages, and bind the shared DLQ by
    that name too, as that version did, so that nothing it dead-letters is dropped."""
    await bus.declarations.bind(queue)
    await bus.declarations.dead_letters(AGENT_DEAD_LETTERS, queue.name)
    log.warning("agent_queue_from_earlier_version", queue=queue.name)


async def forget_agent(bus: Bus, agent_id: str) -> None:
    """Once a retired agent's queue is drained: delete it if still empty (its dead letters
    stay in the shared dead-letter queue), and its results exchange with its bindings, so
    that nothing of a terminated agent stays on the broker."""
    with contextlib.suppress(Exception):  # gone already, or not empty: kept
        await bus.declarations.delete(command_queue(agent_id).name, if_empty=True)
    with contextlib.suppress(Exception):  # gone already
        await bus.declarations.delete_exchange(results_exchange(agent_id).name)


async def unbind_agent(bus: Bus, agent_id: str) -> None:
    """Stop new commands reaching the agent: a publish for it is then returned as unroutable."""
    await bus.declarations.unbind(command_queue(agent_id))
