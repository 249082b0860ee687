"""The closed loop of structure as a scenario, shared by its test and its benchmark.

A burst of distinct work for the `worker` type overloads root's variety beyond its capacity
(the meta-system need above its threshold) for S4's window; S4 proposes a transformational
adaptation naming `worker`; S5 adopts it; S3 answers with the child's spawn request (its
budget carved from root's); S5 spawns `root/worker` and has operations re-home the workers
into it, after which S2 dispatches root's `worker` lane there; root's variety falls. Once
the child has been idle for STRUCTURE_IDLE_S, S5 adopts the policy that folds it back: the
workers return to root and the child is retired (`structure_episode`). Each arrow is found
by causation id. It needs the system launched with `STRUCTURE_ENV`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.closed_loop import Seen, Watch
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.scale_loop import effect
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction, AdaptationProposal
from vsm.contract.coordination import WorkItem, work_key
from vsm.contract.operations import AgentRehomed, RehomeAgents, results_exchange
from vsm.contract.policy import PolicyChanged
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned

CHILD = "root/worker"
AFTER_MOVE = 1_000_000
"""The first number of the items offered once the workers moved."""
STRUCTURE_ENV = {
    "SCAN_INTERVAL": "1",
    "VARIETY_WINDOW_S": "5",
    "META_SYSTEM_THRESHOLD": "0.25",
    "STRUCTURE_SUSTAIN_S": "2",
    "STRUCTURE_IDLE_S": "8",
    "PERFORMANCE_INTERVAL": "1",
}
"""Fast clocks: S4 scans every second over a 5 s window; variety beyond capacity (a need of
0.25) for 2 s grows a child, which folds back after 8 s without work; S1 reports every 1 s."""

KINDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("process_data", {"data": {"n": 0}}),
    ("transform", {"operation": "uppercase", "data": "work"}),
    ("transform", {"operation": "aggregate", "data": [1, 2, 3]}),
    ("analyze", {"values": [1.0, 2.0, 3.0]}),
)
"""Distinct work for one agent type: every kind answers `ok`, so nothing hurts (no pain)."""


def work(lane: str, n: int) -> WorkItem:
    command, data = KINDS[n % len(KINDS)]
    return WorkItem(
        lane=lane,
        agent_type="worker",
        command_id=f"{lane}-{n}",
        command_type=command,
        data={**data, **({"data": {"n": n}} if command == "process_data" else {})},
    )


async def offer(probe: Probe, lane: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        await probe.bus.publish(topology.COORDINATION, work(lane, n), routing_key=work_key(lane))


async def structure_watch(probe: Probe, agents: list[str]) -> Watch:
    """A watch on proposals, policies, adaptation steps, the tree, re-homing and results."""
    watch = Watch(probe)
    await watch.listen(
        (topology.INTELLIGENCE.name, "adaptation.proposal.*"),
        (topology.POLICY.name, ""),
        (topology.CONTROL.name, "adaptation.#"),
        (topology.RECURSIVE.name, "spawned.#"),
        (topology.RECURSIVE.name, "retired.#"),
        (topology.REQUESTS.name, topology.request_key("operations", "rehome")),
        (topology.S1_REGISTRY.name, "agent.rehomed.#"),
        *((results_exchange(a).name, "#") for a in agents),
    )
    return watch


def grown(seen: Seen) -> bool:
    return seen.data["kind"] == "transformational" and seen.data["policy"].get("delegate") == [
        "worker"
    ]


@dataclass(frozen=True)
class StructureEpisode:
    """What one episode showed, in order (the times are `Seen.at`, monotonic)."""

    started: float
    proposal: Seen
    adopted: Seen
    request: Seen
    spawned: Seen
    moved: list[Seen]
    relieved_at: float
    """When root's meta-system need was first seen below its threshold after the move."""
    folded: Seen
    returned: list[Seen]
    retired: Seen


async def need_of(gateway: httpx.AsyncClient, vsm_id: str = "root") -> dict[str, Any]:
    answer = await gateway.get("/api/vsm/system/4/meta-system-need", params={"vsm_id": vsm_id})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def burst(probe: Probe, lane: str, until: asyncio.Event) -> int:
    """Distinct work for `worker`, 8 items every 0.4 s, until `until` is set (at most 90 s)."""
    sent = 0
    deadline = time.monotonic() + 90
    while not until.is_set() and time.monotonic() < deadline:
        await offer(probe, lane, sent, 8)
        sent += 8
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), 0.4)
    return sent


async def rehomed(watch: Watch, request: Seen, agents: set[str], what: str) -> list[Seen]:
    """The registry events of one re-home request (caused by it), once every agent moved."""

    async def seen() -> list[Seen] | None:
        found = [
            s
            for s in watch.of(AgentRehomed.TYPE)
            if s.envelope.get("causationid") == request.envelope["id"]
        ]
        return found if {s.data["agent"]["agent_id"] for s in found} >= agents else None

    return await eventually(seen, timeout=30, interval=0.1, what=what)


async def grow(probe: Probe, watch: Watch, lane: str, agents: set[str]) -> tuple[Seen, ...]:
    """Burst until S4's proposal is adopted and the agents moved: the arrows up to the move."""
    moved = asyncio.Event()
    bursting = asyncio.create_task(burst(probe, lane, moved))
    try:
        proposal = await watch_for(watch, grown, "a transformational proposal naming worker")
        adopted = await effect(watch, PolicyChanged.TYPE, proposal, "the adopted policy")
        request = await effect(watch, AdaptationAction.TYPE, adopted, "S3's spawn request")
        spawned = await effect(watch, MetaSystemSpawned.TYPE, request, "the child spawned")
        asking = await effect(watch, RehomeAgents.TYPE, spawned, "the re-home request")
        await rehomed(watch, asking, agents, "the workers re-homed")
    finally:
        moved.set()
        await bursting
    await offer(probe, lane, AFTER_MOVE, 8)  # root's worker work, now done in the child
    return proposal, adopted, request, spawned, asking


async def watch_for(watch: Watch, test: Any, what: str, since: float = 0.0) -> Seen:
    async def seen() -> Seen | None:
        return next((s for s in watch.of(AdaptationProposal.TYPE, since) if test(s)), None)

    return await eventually(seen, timeout=90, interval=0.2, what=what)


async def relieved(gateway: httpx.AsyncClient) -> float:
    async def below() -> float | None:
        need = await need_of(gateway)
        return time.monotonic() if need["score"] < need["threshold"] else None

    return await eventually(below, timeout=30, interval=0.3, what="root's variety below capacity")


async def fold(watch: Watch, spawned: Seen, agents: set[str]) -> tuple[Seen, Seen, list[Seen]]:
    """After the idle time: S5's policy folding the child, the agents back, the retirement."""
    folded = await effect(watch, PolicyChanged.TYPE, spawned, "the policy folding the child")
    asking = await effect(watch, RehomeAgents.TYPE, folded, "the request to bring work back")
    returned = await rehomed(watch, asking, agents, "the workers back in root")
    retired = await effect(watch, MetaSystemRetired.TYPE, folded, "the child retired")
    return folded, retired, returned


async def structure_episode(
    gateway: httpx.AsyncClient, probe: Probe, watch: Watch, agents: set[str]
) -> StructureEpisode:
    """Follow one episode with `agents`, the running workers of root, to the child retired."""
    lane = f"variety-{secrets.token_hex(3)}"
    started = time.monotonic()
    proposal, adopted, request, spawned, asking = await grow(probe, watch, lane, agents)
    moved = [s for s in watch.of(AgentRehomed.TYPE) if caused_by_id(s, asking)]
    relieved_at = await relieved(gateway)
    folded, retired, returned = await fold(watch, spawned, agents)
    return StructureEpisode(
        started, proposal, adopted, request, spawned, moved, relieved_at, folded, returned, retired
    )


def caused_by_id(seen: Seen, cause: Seen) -> bool:
    return seen.envelope.get("causationid") == cause.envelope["id"]


def structural_changes(watch: Watch, since: float) -> int:
    """Children spawned and retired since `since`."""
    return len(watch.of(MetaSystemSpawned.TYPE, since)) + len(
        watch.of(MetaSystemRetired.TYPE, since)
    )
