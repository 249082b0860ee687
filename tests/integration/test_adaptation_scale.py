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

import secrets
from typing import Any

import httpx
import pytest

from tests.support.closed_loop import Seen, Watch
from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction, AdaptationProposal
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import WorkItem, work_key
from vsm.contract.operations import CommandResult
from vsm.contract.policy import PolicyChanged

pytestmark = pytest.mark.timeout(180)
WORK = 40


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    """Fast clocks: S2 reports pressure twice a second, S4 scales after 1 s of queueing
    (over 2 items per worker) by at most 2 workers, and back after 3 s of calm; adaptation
    may spawn 3 workers an hour; an isolated agent is probed after 2 s."""
    return {
        "OSCILLATION_INTERVAL_S": "0.5",
        "SCALE_QUEUED_PER_AGENT": "2",
        "SCALE_SUSTAIN_S": "1",
        "SCALE_CALM_S": "3",
        "SCALE_MAX_STEP": "2",
        "ADAPTATION_SPAWNS_PER_HOUR": "3",
        "ISOLATION_PROBE_S": "2",
    }


async def spawn_worker(gateway: httpx.AsyncClient, slots: int = 1) -> str:
    config = {"allocation": slots, "max_allocation": 4}
    response = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


async def store(gateway: httpx.AsyncClient, policy_type: str, policy: dict[str, Any]) -> None:
    response = await gateway.put(
        f"/api/vsm/policies/{policy_type}", json={"policy": policy, "reason": "test"}
    )
    assert response.status_code == 200, response.text


async def offer(probe: Probe, lane: str, count: int) -> list[str]:
    """Work for any worker (not one named agent), through S2's lanes."""
    ids = [f"{lane}-{n}" for n in range(count)]
    for command_id in ids:
        item = WorkItem(
            lane=lane,
            agent_type="worker",
            command_id=command_id,
            command_type="process_data",
            data={"data": {"n": command_id}},
        )
        await probe.bus.publish(topology.COORDINATION, item, routing_key=work_key(lane))
    return ids


def caused_by(watch: Watch, message_type: str, cause: Seen, **data: Any) -> Seen | None:
    """The first `message_type` seen whose causation id is `cause`'s id (and with `data`)."""
    return next(
        (
            s
            for s in watch.of(message_type)
            if s.envelope.get("causationid") == cause.envelope["id"]
            and all(s.data.get(k) == v for k, v in data.items())
        ),
        None,
    )


async def effect(watch: Watch, message_type: str, cause: Seen, what: str, **data: Any) -> Seen:
    async def seen() -> Seen | None:
        return caused_by(watch, message_type, cause, **data)

    return await eventually(seen, timeout=30, interval=0.1, what=what)


def scale_of(seen: Seen) -> dict[str, int]:
    return dict(seen.data["policy"].get("scale", {}))


async def test_queueing_scales_a_type_up_and_calm_scales_it_back_down(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    base = await spawn_worker(gateway)
    watch = Watch(system_probe)
    await watch.listen(
        (topology.INTELLIGENCE.name, "adaptation.proposal.*"),
        (topology.POLICY.name, ""),
        (topology.CONTROL.name, "adaptation.#"),
        (topology.CONTROL.name, f"allocation.{base}"),
        (topology.S1_RESULTS.name, "#"),
    )
    try:
        await store(
            gateway,
            "throttle",
            {"limits": [{"target": base, "max_rate_per_s": 1, "reason": "slow on purpose"}]},
        )
        await watch.first(AllocationChanged.TYPE, timeout=30)  # S2 holds it to 1/s from now
        lane = f"scale-{secrets.token_hex(3)}"
        offered = set(await offer(system_probe, lane, WORK))

        # S4 sees the queue sustained and proposes more workers ...
        async def proposed_up() -> Seen | None:
            return next(
                (
                    s
                    for s in watch.of(AdaptationProposal.TYPE)
                    if s.data["kind"] == "expansive" and scale_of(s).get("worker", 0) > 1
                ),
                None,
            )

        up = await eventually(proposed_up, timeout=30, what="an expansive proposal")
        assert scale_of(up) == {"worker": 3}
        # ... S5 adopts it as a policy version caused by the proposal ...
        adopted = await effect(watch, PolicyChanged.TYPE, up, "the adopted policy")
        assert adopted.data["record"]["source"] == "s4:expansive"
        # ... and S3 has operations spawn the workers, caused by the policy.
        spawned = await effect(watch, AdaptationAction.TYPE, adopted, "the spawn step")
        assert (spawned.data["action"], spawned.data["owner"]) == ("spawn", "S1")
        assert spawned.data["outcome"] == "done"
        new_workers = set(spawned.data["agent_ids"])
        assert len(new_workers) == 2
        assert base not in new_workers

        # The queue drains, much of it through the new workers.
        def served() -> dict[str, str]:
            return {
                s.data["command_id"]: s.data["agent_id"]
                for s in watch.of(CommandResult.TYPE)
                if s.data["command_id"] in offered
            }

        async def drained() -> bool | None:
            return len(served()) == WORK or None

        try:
            await eventually(drained, timeout=30, what="every item served")
        except AssertionError:
            print(sorted(offered - set(served())), watch.story())
            raise
        by_new = [c for c, agent in served().items() if agent != base]
        assert len(by_new) >= WORK // 2, served()

        # Nothing waits any more: S4 proposes the count it started from, S3 retires its own.
        async def proposed_down() -> Seen | None:
            return next(
                (
                    s
                    for s in watch.of(AdaptationProposal.TYPE, up.at)
                    if scale_of(s) == {"worker": 1}
                ),
                None,
            )

        down = await eventually(proposed_down, timeout=30, what="the proposal to scale back")
        readopted = await effect(watch, PolicyChanged.TYPE, down, "the policy to scale back")
        retired = await effect(watch, AdaptationAction.TYPE, readopted, "the retire step")
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
    watch = await watching(system_probe, (topology.CONTROL.name, f"allocation.{victim}"))
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
        steps = [
            (s.data["action"], s.data["outcome"])
            for s in watch.of(AdaptationAction.TYPE)
            if s.envelope.get("causationid") == policy.envelope["id"]
        ]
        assert steps == [("isolate", "done"), ("readmit", "done"), ("readmit", "done")]
    finally:
        await watch.stop()


async def test_incremental_capacity_changes_the_agents_slots_within_the_budget(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    agent = await spawn_worker(gateway, slots=2)
    watch = await watching(system_probe, (topology.CONTROL.name, f"allocation.{agent}"))
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
