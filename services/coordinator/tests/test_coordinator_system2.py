"""Capacity, work intake, notes and the state S2 reports."""

from __future__ import annotations

import json

import pytest

from vsm.contract.control import AllocationChanged, Resources
from vsm.contract.coordination import WorkItem
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.health import Ping
from vsm.contract.operations import MAX_PAYLOAD_BYTES, AgentInfo
from vsm.coordinator import intake, notes
from vsm.coordinator.capacity import Fleet, TokenBucket, address
from vsm.coordinator.system2 import Params, System2


def info(agent_id: str, slots: int = 2, state: str = "running", vsm_id: str = "root") -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        agent_type="worker",
        vsm_id=vsm_id,
        allocation=slots,
        max_allocation=16,
        state=state,
        spawned_at="2025-01-01T00:00:00Z",
    )


def change(agent_id: str, slots: int, rate: float | None = None) -> AllocationChanged:
    return AllocationChanged(
        agent_id=agent_id,
        agent_type="worker",
        resources=Resources(concurrency_slots=slots),
        max_rate_per_s=rate,
        reason="test",
    )


def test_registry_entries_are_applied_idempotently_and_s3_has_the_last_word() -> None:
    fleet = Fleet()
    fleet.learn(info("w1", 2))
    fleet.learn(info("w1", 2))
    assert fleet.allocate(change("w1", 6), 0.0) == 1
    fleet.learn(info("w1", 2))  # a late or replayed spawn event must not undo S3
    assert fleet.agents["w1"].slots == 6
    fleet.learn(info("w1", 2, state="terminated"))
    assert "w1" not in fleet.agents
    assert fleet.allocate(change("w1", 1), 0.0) is None


def test_slots_are_held_until_released() -> None:
    fleet = Fleet()
    fleet.learn(info("w1", 2))
    agent = fleet.agents["w1"]
    agent.take(0.0)
    agent.take(0.0)
    assert not fleet.can_take("w1", 0.0)
    agent.release()
    assert fleet.can_take("w1", 0.0)
    assert fleet.allocate(change("w1", 0), 0.0) == -1
    assert not fleet.can_take("w1", 0.0)  # zero slots: paused


def test_a_token_bucket_allows_its_rate_with_a_burst_of_one_second() -> None:
    bucket = TokenBucket.full(2.0, 0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)
    assert not bucket.take(0.5)
    slow = TokenBucket.full(0.5, 0.0)
    assert slow.take(0.0)
    assert not slow.take(1.0)
    assert slow.take(2.0)


def work(**overrides: object) -> bytes:
    body = {"lane": "l1", "agent_id": "w1", "command_id": "c1", "command_type": "process_data"}
    envelope = Envelope.wrap(WorkItem.model_validate(body | overrides), source="test")
    return envelope.model_dump_json().encode()


def test_a_work_item_is_taken_in() -> None:
    envelope = intake.work_item(work(weight=5, data={"data": [1]}))
    assert envelope.data.lane == "l1"
    assert envelope.data.weight == 5


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type": ', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (json.dumps({"type": "vsm.nothing.v1", "data": {}}).encode(), "unknown_type"),
        (work().replace(b'"lane":"l1"', b'"lane":"Not A Lane"'), "invalid_schema"),
        (b"[1, 2]", "invalid_schema"),
        (Envelope.wrap(Ping(), source="t").model_dump_json().encode(), "unexpected_type"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
    ],
)
def test_bad_work_is_refused_with_its_reason(body: bytes, reason: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        intake.work_item(body)
    assert refused.value.reason == reason


def test_notes_need_two_running_agents_and_are_rate_limited_per_pair() -> None:
    fleet = Fleet()
    fleet.learn(info("w1"))
    fleet.learn(info("w2"))
    refused = notes.refusal(fleet, "w1", "ghost")
    assert refused is not None
    assert refused.code == "unknown_agent"
    assert refused.details == {"unknown": ["ghost"]}
    assert notes.refusal(fleet, "w1", "w2") is None

    limiter = notes.NoteLimiter(rate_per_s=10)
    allowed = [limiter.allow("w1", "w2", 0.0) for _ in range(12)]
    assert allowed.count(True) == 10
    assert limiter.allow("w2", "w1", 0.0)  # the other direction is another pair
    assert limiter.allow("w1", "w2", 0.2)


def test_the_state_is_the_systems_own() -> None:
    s2 = System2(Params())
    s2.fleet.learn(info("w1", 3))
    s2.fleet.learn(info("c1", 1, vsm_id="root/child"))
    s2.fleet.agents["w1"].take(0.0)
    s2.lanes.add("l1", 2, "w1", "c1", 0.0)
    for n, move in enumerate([1, -1, 1, -1]):
        s2.detector.observe("w1", "root", "allocation", move, 1000.0 + n)

    state = s2.state("root", 2.0, 1004.0)
    assert state.capacity == {"w1": 3}
    assert state.in_flight == {"w1": 1}
    assert [(lane.lane, lane.weight, lane.queued) for lane in state.lanes] == [("l1", 2, 1)]
    assert state.lanes[0].oldest_wait_s == 2.0
    assert state.flapping == ["w1"]
    assert state.oscillation_index == 1.0
    assert list(state.damped) == ["w1"]
    assert s2.state("root/child", 2.0, 1004.0).capacity == {"c1": 1}
    assert s2.systems("root") == {"root", "root/child"}


def typed_item(**address: str) -> WorkItem:
    return WorkItem(lane="main", command_id="c1", command_type="process", **address)


def test_work_names_an_agent_or_a_type_never_both_nor_neither() -> None:
    typed_item(agent_id="w1")
    typed_item(agent_type="worker")
    for wrong in ({}, {"agent_id": "w1", "agent_type": "worker"}):
        with pytest.raises(ValueError, match="exactly one"):
            typed_item(**wrong)


def test_work_for_a_type_goes_to_its_least_busy_agent_of_that_system() -> None:
    fleet = Fleet()
    for agent in (info("w1", 1), info("w2", 2), info("c1", 2, vsm_id="root/child")):
        fleet.learn(agent)
    waits_for = address(typed_item(agent_type="worker"), "root")
    assert waits_for == "type:root:worker"
    assert fleet.pick(waits_for, 0.0).agent_id == "w1"  # type: ignore[union-attr]
    fleet.agents["w1"].take(0.0)
    assert fleet.pick(waits_for, 0.0).agent_id == "w2"  # type: ignore[union-attr]
    fleet.agents["w2"].take(0.0)
    fleet.agents["w2"].take(0.0)
    assert not fleet.can_take(waits_for, 0.0)  # the child's worker is not root's
    assert fleet.can_take(address(typed_item(agent_type="worker"), "root/child"), 0.0)


def test_pressure_counts_what_waits_per_type_addressed_either_way() -> None:
    fleet = Fleet()
    fleet.learn(info("w1", 1))
    fleet.agents["w1"].take(0.0)
    pressure = fleet.pressure("root", {"w1": 2, "type:root:worker": 5, "type:root:sensor": 1})
    assert {t: (p.agents, p.queued, p.in_flight) for t, p in pressure.items()} == {
        "worker": (1, 7, 1),
        "sensor": (0, 1, 0),
    }
    assert fleet.pressure("root/other", {"type:root:worker": 5}) == {}
    waiting = {"w1": 2, "type:root:worker": 5, "type:root:sensor": 1}
    assert fleet.pressures(waiting) == {"root": fleet.pressure("root", waiting)}


def test_a_shed_lane_waits_until_it_is_resumed() -> None:
    s2 = System2(Params())
    s2.fleet.learn(info("w1", 2))
    s2.lanes.add("batch", 1, "w1", "c1", 0.0)
    s2.shed("batch", True)
    assert s2.lanes.next(1.0, lambda a: s2.fleet.can_take(a, 1.0)) is None
    s2.shed("batch", False)
    assert s2.lanes.next(1.0, lambda a: s2.fleet.can_take(a, 1.0)).command_id == "c1"  # type: ignore[union-attr]


def test_an_agent_that_found_no_route_rests_and_its_type_work_goes_elsewhere() -> None:
    fleet = Fleet()
    fleet.learn(info("w1", 1))
    fleet.learn(info("w2", 1))
    waits_for = address(typed_item(agent_type="worker"), "root")
    fleet.agents["w1"].rest(until=5.0)
    assert fleet.pick(waits_for, 1.0).agent_id == "w2"  # type: ignore[union-attr]
    fleet.agents["w2"].take(1.0)
    assert fleet.pick(waits_for, 1.0) is None
    assert fleet.pick(waits_for, 5.0).agent_id == "w1"  # type: ignore[union-attr]


def test_a_rehomed_type_takes_its_lane_to_the_child_and_back() -> None:
    fleet = Fleet()
    fleet.learn(info("w-1"))
    item = WorkItem(lane="l", agent_type="worker", command_id="c1", command_type="process_data")
    waiting = address(item, "root")
    assert fleet.pick(waiting, 0.0) is not None

    fleet.rehome(info("w-1", vsm_id="root/worker"), "root")
    picked = fleet.pick(waiting, 0.0)  # root's worker work is dispatched in the child
    assert picked is not None
    assert picked.vsm_id == "root/worker"
    assert set(fleet.pressure("root/worker", {waiting: 3})) == {"worker"}
    assert fleet.pressure("root", {waiting: 3}) == {}

    fleet.rehome(info("w-1"), "root/worker")  # back: the lane is root's again
    assert fleet.routes == {}
    picked = fleet.pick(waiting, 0.0)
    assert picked is not None
    assert picked.vsm_id == "root"
