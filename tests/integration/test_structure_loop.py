"""The closed loop of structure, end to end on the real broker with all seven services.

A burst of distinct work for the `worker` type overloads root's variety beyond its capacity
for S4's window; S4 proposes a transformational adaptation naming `worker`; S5 adopts it
(nothing in root's governance asks a person); S3 answers with the spawn request of the
child, its budget carved from root's; S5 spawns `root/worker` and operations re-homes the
workers into it; S2 dispatches root's worker lane there, and root's variety falls below
capacity. Idle for STRUCTURE_IDLE_S, the child is folded back: the workers return to root
and the child is retired. Every arrow is checked by causation id; the episode makes two
structural changes, no more. Then governance asks a person for S4's adaptations: nothing
moves until the proposal is approved.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.support.closed_loop import Seen
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.scale_loop import effect, spawn_worker, store
from tests.support.structure_loop import (
    AFTER_MOVE,
    CHILD,
    STRUCTURE_ENV,
    burst,
    grown,
    structural_changes,
    structure_episode,
    structure_watch,
    watch_for,
)
from vsm.contract.adaptation import AdaptationAction
from vsm.contract.operations import CommandResult
from vsm.contract.policy import PolicyChanged
from vsm.contract.recursion import MetaSystemSpawned

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return STRUCTURE_ENV


async def homes(gateway: httpx.AsyncClient, agents: set[str]) -> set[str]:
    listing = (await gateway.get("/api/vsm/agents", params={"type": "worker"})).json()
    return {a["vsm_id"] for a in listing if a["agent_id"] in agents}


async def children(gateway: httpx.AsyncClient) -> list[str]:
    tree = (await gateway.get("/api/vsm/meta-systems")).json()
    return [c["vsm_id"] for c in tree["children"]]


async def test_variety_overload_grows_a_child_for_the_work_and_idleness_folds_it_back(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    agents = {await spawn_worker(gateway, slots=2) for _ in range(2)}
    watch = await structure_watch(system_probe, sorted(agents))
    try:
        episode = await structure_episode(gateway, system_probe, watch, agents)
        # S4 named the overloading work; S5 adopted it as a policy caused by the proposal.
        proposal, adopted = episode.proposal, episode.adopted
        assert proposal.data["evidence"]["agent_type"] == "worker"
        assert proposal.data["evidence"]["meta_system_need"]["score"] >= 0.25
        assert adopted.data["record"]["source"] == "s4:transformational"
        # S3's spawn request carved from root's free budget; S5 spawned the child with it.
        request, spawned = episode.request, episode.spawned
        assert (request.data["action"], request.data["outcome"]) == ("meta_system", "proposed")
        info = spawned.data["meta_system"]
        assert (info["vsm_id"], info["parent"]) == (CHILD, "root")
        assert info["budget"] == request.data["request"]["budget"]
        assert info["budget"]["concurrency_slots"] > 0
        # The type's agents moved to the child (their registry entries say so) ...
        assert {s.data["agent"]["agent_id"] for s in episode.moved} == agents
        assert {s.data["agent"]["vsm_id"] for s in episode.moved} == {CHILD}
        # ... and root's worker lane offered after the move was dispatched in the child.
        after = {
            s.data["command_id"]: s.envelope.get("vsmid")
            for s in watch.of(CommandResult.TYPE)
            if int(s.data["command_id"].rsplit("-", 1)[1]) >= AFTER_MOVE
        }
        assert len(after) == 8, watch.story(episode.started)
        assert set(after.values()) == {CHILD}
        # Root's variety fell below its capacity before the child was folded back.
        assert episode.relieved_at < episode.retired.at
        # Folded after the idle time: S5's own policy, the agents back, the child retired.
        folded = episode.folded.data["record"]
        assert (folded["source"], folded["policy"]["fold"]) == ("rules", [CHILD])
        assert {s.data["agent"]["vsm_id"] for s in episode.returned} == {"root"}
        assert episode.retired.data["vsm_id"] == CHILD
        assert await homes(gateway, agents) == {"root"}
        assert await children(gateway) == []
        # Two structural changes in the episode: the child grown and retired.
        assert structural_changes(watch, episode.started) == 2
        # The chain is on the trail: proposal -> policy -> request -> child -> move, and
        # child -> fold -> move back, retirement.
        wanted = [adopted, request, spawned, *episode.moved, episode.folded, episode.retired]
        await on_the_trail(gateway, episode.proposal, [*wanted, *episode.returned])
    finally:
        await watch.stop()


async def on_the_trail(gateway: httpx.AsyncClient, start: Seen, wanted: list[Seen]) -> None:
    async def traced() -> dict[str, Any] | None:
        trace = (await gateway.get(f"/api/vsm/trace/{start.envelope['id']}")).json()
        ids = [step["id"] for step in trace.get("chain", [])]
        return trace if all(s.envelope["id"] in ids for s in wanted) else None

    await eventually(traced, timeout=20, what="the chain in the trace")


async def test_when_governance_asks_a_person_nothing_moves_until_the_change_is_approved(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    governance = {
        "principles": ["a person approves a change of structure"],
        "approvals": [{"policy_type": "adaptation", "authors": ["s4"]}],
    }
    await store(gateway, "governance", governance)
    agents = {a["agent_id"] for a in await workers(gateway)}
    watch = await structure_watch(system_probe, sorted(agents))
    started = time.monotonic()
    stop = asyncio.Event()
    bursting = asyncio.create_task(burst(system_probe, f"held-{secrets.token_hex(3)}", stop))
    try:
        proposal = await watch_for(watch, grown, "S4's proposal", since=started)
        approval = await pending(gateway)
        assert approval["source"] == "s4:transformational"
        stop.set()
        await bursting
        # Held: no policy version, no spawn request, no child; the workers stay in root.
        await asyncio.sleep(3)
        assert watch.of(PolicyChanged.TYPE, started) == []
        assert watch.of(AdaptationAction.TYPE, started) == []
        assert watch.of(MetaSystemSpawned.TYPE, started) == []
        assert await children(gateway) == []
        assert await homes(gateway, agents) == {"root"}

        decided = await gateway.post(
            f"/api/vsm/approvals/{approval['approval_id']}", json={"decision": "approve"}
        )
        assert decided.status_code == 200, decided.text
        adopted = await watch.first(PolicyChanged.TYPE, started, timeout=30)
        assert adopted.data["record"]["policy"]["delegate"] == ["worker"]
        request = await effect(watch, AdaptationAction.TYPE, adopted, "S3's spawn request")
        spawned = await effect(watch, MetaSystemSpawned.TYPE, request, "the child spawned")
        assert spawned.data["meta_system"]["vsm_id"] == CHILD

        async def moved() -> bool | None:
            return await homes(gateway, agents) == {CHILD} or None

        await eventually(moved, timeout=30, what="the workers in the child")
        assert proposal.envelope["id"] in adopted.data["record"]["causation"]
    finally:
        stop.set()
        await bursting
        await watch.stop()


async def workers(gateway: httpx.AsyncClient) -> list[dict[str, Any]]:
    listing = (await gateway.get("/api/vsm/agents", params={"type": "worker"})).json()
    return [a for a in listing if a["state"] == "running"]


async def pending(gateway: httpx.AsyncClient) -> dict[str, Any]:
    async def waiting() -> dict[str, Any] | None:
        listed = (await gateway.get("/api/vsm/approvals")).json()
        found = [a for a in listed if a["policy_type"] == "adaptation"]
        return found[0] if found else None

    return dict(await eventually(waiting, timeout=30, what="the approval asked for"))
