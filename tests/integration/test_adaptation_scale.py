"""The closed loop of scale, end to end on the real broker with all seven services running.

Work for the `worker` type queues behind one throttled worker; S2 reports the pressure; S4
sees it sustained and proposes an expansive adaptation; S5 adopts it as a policy; S3 carries
it out by asking operations for more workers, within the hour's quota; S2 dispatches the
waiting work to them and the queue drains; once nothing waits, S4 proposes the count it
started from and S3 retires the workers it spawned. Every arrow is checked by causation ids
and rebuilt by `GET /api/vsm/trace/{id}`. A step beyond the quota is refused on the trail,
with its reason, and raised to S5.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.closed_loop import Seen, Watch
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.scale_loop import (
    SCALE_ENV,
    WORK,
    effect,
    scale_episode,
    scale_of,
    scale_watch,
    spawn_worker,
    store,
)
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged, allocation_key
from vsm.contract.policy import PolicyChanged

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return SCALE_ENV


async def test_queueing_scales_a_type_up_and_calm_scales_it_back_down(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    base = await spawn_worker(gateway)
    watch = await scale_watch(system_probe, base)
    try:
        episode = await scale_episode(gateway, system_probe, watch, base)
        up, adopted, spawned = episode.up, episode.adopted, episode.spawned
        # S4 proposed more workers, S5 adopted it, S3 had operations spawn them
        assert scale_of(up) == {"worker": 3}
        assert adopted.data["record"]["source"] == "s4:expansive"
        assert (spawned.data["action"], spawned.data["owner"]) == ("spawn", "S1")
        assert spawned.data["outcome"] == "done"
        new_workers = set(spawned.data["agent_ids"])
        assert len(new_workers) == 2
        assert base not in new_workers
        # The queue drained, much of it through the new workers.
        by_new = [c for c, s in episode.served.items() if s.data["agent_id"] != base]
        assert len(by_new) >= WORK // 2, episode.served
        # S4 proposed the count it started from, S3 retired its own.
        retired = episode.retired
        assert (retired.data["action"], retired.data["outcome"]) == ("retire", "done")
        # (under load S4 may have asked for one more step before the queue drained: every
        # agent adaptation spawned is retired, and there are no more than the quota's 3)
        adapted = {
            agent_id
            for s in watch.of(AdaptationAction.TYPE)
            if (s.data["action"], s.data["outcome"]) == ("spawn", "done")
            for agent_id in s.data["agent_ids"]
        }
        assert new_workers <= adapted
        assert len(adapted) <= 3
        assert set(retired.data["agent_ids"]) == adapted

        listing = (await gateway.get("/api/vsm/agents", params={"type": "worker"})).json()
        assert {a["agent_id"] for a in listing} == {base}

        async def traced() -> dict[str, Any] | None:
            trace = (await gateway.get(f"/api/vsm/trace/{up.envelope['id']}")).json()
            order = [step["id"] for step in trace.get("chain", [])]
            wanted = [up, adopted, spawned]
            return trace if all(s.envelope["id"] in order for s in wanted) else None

        trace = await eventually(traced, timeout=15, what="the chain in the trace")
        order = [step["id"] for step in trace["chain"]]
        positions = [order.index(s.envelope["id"]) for s in (up, adopted, spawned)]
        assert positions == sorted(positions), trace["text"]
    finally:
        await watch.stop()


def slots(seen: Seen) -> int:
    return int(seen.data["resources"]["concurrency_slots"])


async def watching(probe: Probe, *more: tuple[str, str]) -> Watch:
    """A watch on policies and adaptation steps (and `more`)."""
    watch = Watch(probe)
    await watch.listen((topology.POLICY.name, ""), (topology.CONTROL.name, "adaptation.#"), *more)
    return watch


async def adapt(
    gateway: httpx.AsyncClient, watch: Watch, mode: str, rationale: str, **fields: Any
) -> Seen:
    """Store an adaptation policy as an operator would; its `PolicyChanged` as seen."""
    document = {"mode": mode, "actions": [rationale], "rationale": rationale, **fields}
    await store(gateway, "adaptation", document)
    return await watch.first(PolicyChanged.TYPE, timeout=15)


async def test_defensive_isolation_takes_the_agents_share_and_a_probe_lets_it_back(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    victim = await spawn_worker(gateway, slots=2)
    watch = await watching(system_probe, (topology.CONTROL.name, allocation_key(victim)))
    try:
        policy = await adapt(gateway, watch, "defensive", "it keeps failing", isolate=[victim])
        isolated = await effect(watch, AdaptationAction.TYPE, policy, "the isolate step")
        assert (isolated.data["action"], isolated.data["owner"]) == ("isolate", "S2")
        allocations = [
            s
            for s in watch.of(AllocationChanged.TYPE)
            if s.envelope.get("causationid") == policy.envelope["id"]
        ]
        assert [slots(s) for s in allocations][:1] == [0]  # S2 dispatches nothing to it

        async def readmitted() -> list[int] | None:
            seen = [
                slots(s)
                for s in watch.of(AllocationChanged.TYPE)
                if s.envelope.get("causationid") == policy.envelope["id"]
            ]
            return seen if seen[-1:] == [2] else None

        assert await eventually(readmitted, timeout=20, what="probation, then base slots") == [
            0,
            1,
            2,
        ]

        # each step's action is published apart from its allocation, so the last may trail it
        async def both_steps() -> list[tuple[str, str]] | None:
            steps = [
                (s.data["action"], s.data["outcome"])
                for s in watch.of(AdaptationAction.TYPE)
                if s.envelope.get("causationid") == policy.envelope["id"]
            ]
            return steps if len(steps) >= 3 else None

        steps = await eventually(both_steps, timeout=10, what="the two readmit steps")
        assert steps == [("isolate", "done"), ("readmit", "done"), ("readmit", "done")]
    finally:
        await watch.stop()


async def test_incremental_capacity_changes_the_agents_slots_within_the_budget(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    agent = await spawn_worker(gateway, slots=2)
    watch = await watching(system_probe, (topology.CONTROL.name, allocation_key(agent)))
    try:
        policy = await adapt(gateway, watch, "incremental", "the busy one", capacity={agent: 2.0})
        step = await effect(watch, AdaptationAction.TYPE, policy, "the reallocate step")
        assert (step.data["action"], step.data["owner"], step.data["outcome"]) == (
            "reallocate",
            "S3",
            "done",
        )
        allocation = await effect(watch, AllocationChanged.TYPE, policy, "the new allocation")
        assert slots(allocation) == 4
    finally:
        await watch.stop()


async def test_transformational_proposes_a_child_system_with_its_spawn_request(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    watch = await watching(system_probe)
    try:
        policy = await adapt(
            gateway,
            watch,
            "transformational",
            "the variety of summaries exceeds what this system absorbs",
            overloading=["s1.result.summarise.ok"],
        )
        step = await effect(watch, AdaptationAction.TYPE, policy, "the meta-system proposal")
        assert (step.data["action"], step.data["owner"], step.data["outcome"]) == (
            "meta_system",
            "S5",
            "proposed",
        )
        request = step.data["request"]
        assert request["name"] == "s1-result-summarise-ok"
        assert "s1.result.summarise.ok" in request["purpose"]
        assert request["budget"]["concurrency_slots"] > 0
        tree = (await gateway.get("/api/vsm/meta-systems")).json()
        assert tree["children"] == []  # proposed, not spawned: S5 decides
    finally:
        await watch.stop()


async def test_a_step_over_the_hours_quota_is_refused_on_the_trail_and_raised_to_s5(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    watch = await watching(system_probe, (topology.ALGEDONIC.name, ""))
    try:
        policy = await adapt(
            gateway, watch, "expansive", "more than the quota allows", scale={"worker": 20}
        )
        refused = await effect(
            watch, AdaptationAction.TYPE, policy, "the refused step", outcome="refused"
        )
        assert (refused.data["action"], refused.data["reason"]) == ("spawn", "quota")
        assert "3 per hour" in refused.data["detail"]
        pain = await effect(watch, AlgedonicSignal.TYPE, refused, "the pain raised to S5")
        assert (pain.data["kind"], pain.data["reason"]) == ("pain", "adaptation_refused")
        assert pain.data["context"]["refusal"] == "quota"

        async def on_the_trail() -> bool | None:
            trace = (await gateway.get(f"/api/vsm/trace/{policy.envelope['id']}")).json()
            ids = {step["id"] for step in trace.get("chain", [])}
            return {refused.envelope["id"], pain.envelope["id"]} <= ids or None

        await eventually(on_the_trail, timeout=15, what="the refusal in the trace")
    finally:
        await watch.stop()
