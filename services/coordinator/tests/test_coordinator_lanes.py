"""The fair-share scheduler in simulated time: floods, equal lanes, aging, rate, capacity."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass

from vsm.contract.control import AllocationChanged, Resources
from vsm.contract.operations import AgentInfo
from vsm.coordinator.capacity import Fleet
from vsm.coordinator.lanes import FairShare


def agent(agent_id: str, slots: int) -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        agent_type="worker",
        allocation=slots,
        max_allocation=max(slots, 16),
        spawned_at="2025-01-01T00:00:00Z",
    )


@dataclass(frozen=True)
class Arrival:
    at: float
    lane: str
    weight: int
    agent_id: str = "a1"


@dataclass(frozen=True)
class Dispatch:
    at: float
    lane: str
    waited: float
    command_id: str


def simulate(
    arrivals: list[Arrival],
    fleet: Fleet,
    service_s: float,
    until: float,
    starvation_s: float = 1.0,
) -> list[Dispatch]:
    """Run S2's loop in virtual time: arrivals, dispatches when slots free, completions."""
    lanes = FairShare(starvation_s)
    pending = sorted(arrivals, key=lambda a: a.at)
    arrived: dict[str, float] = {}
    done: list[tuple[float, str]] = []  # (time, agent_id) completions
    log: list[Dispatch] = []
    now, i = 0.0, 0
    while now <= until:
        while i < len(pending) and pending[i].at <= now:
            a = pending[i]
            command_id = f"{a.lane}-{i}"
            arrived[command_id] = a.at
            lanes.add(a.lane, a.weight, a.agent_id, command_id, a.at)
            i += 1
        while done and done[0][0] <= now:
            fleet.agents[heapq.heappop(done)[1]].release()
        while (t := lanes.next(now, lambda a, at=now: fleet.can_take(a, at))) is not None:
            fleet.agents[t.agent_id].take(now)
            log.append(Dispatch(now, t.lane, now - arrived[t.command_id], t.command_id))
            heapq.heappush(done, (now + service_s, t.agent_id))
        upcoming = [x for x in (pending[i].at if i < len(pending) else None,) if x is not None]
        if done:
            upcoming.append(done[0][0])
        now = min([*upcoming, now + 0.01])  # tick too: rate buckets refill with time
    return log


def fleet_of(*agents: tuple[str, int]) -> Fleet:
    fleet = Fleet()
    for agent_id, slots in agents:
        fleet.learn(agent(agent_id, slots))
    return fleet


def test_a_100_to_1_flood_serves_the_low_lane_within_5_s() -> None:
    flood = [Arrival(0.0, "flood", 100) for _ in range(5000)]
    trickle = [Arrival(0.5 + 0.1 * n, "trickle", 1) for n in range(20)]
    log = simulate(flood + trickle, fleet_of(("a1", 4)), service_s=0.01, until=20)

    low = [d for d in log if d.lane == "trickle"]
    assert len(low) == 20
    first = low[0]
    still_flooding = sum(1 for d in log if d.lane == "flood" and d.at > first.at)
    assert still_flooding > 1000, "the flood was still on when the low lane was served"
    assert first.waited < 5.0
    assert max(d.waited for d in low) < 1.5


def test_aging_serves_a_starved_lane_first_even_against_weight_1000() -> None:
    flood = [Arrival(0.0, "heavy", 1000) for _ in range(200)]
    light = [Arrival(2.0, "light", 1) for _ in range(5)]
    log = simulate(flood + light, fleet_of(("a1", 1)), service_s=0.5, until=12)

    served = [d.at for d in log if d.lane == "light"]
    assert len(served) == 5  # by stride alone the second would wait for 1000 heavy items
    gaps = [later - earlier for earlier, later in itertools.pairwise(served)]
    assert max(gaps) <= 1.0 + 0.5 + 0.02  # starvation_s, plus one slot becoming free


def test_without_aging_the_light_lane_waits_its_stride() -> None:
    flood = [Arrival(0.0, "heavy", 1000) for _ in range(200)]
    light = [Arrival(2.0, "light", 1) for _ in range(5)]
    log = simulate(flood + light, fleet_of(("a1", 1)), 0.5, until=12, starvation_s=3600)

    assert sum(1 for d in log if d.lane == "light") == 1


def test_three_equal_lanes_stay_within_3x_even_when_queued_one_after_another() -> None:
    arrivals = [Arrival(0.0, lane, 1) for lane in ("a", "b", "c") for _ in range(300)]
    log = simulate(arrivals, fleet_of(("a1", 2)), service_s=0.05, until=10)

    counts = Counter(d.lane for d in log[:300])
    assert set(counts) == {"a", "b", "c"}
    assert max(counts.values()) <= 3 * min(counts.values())
    assert max(counts.values()) - min(counts.values()) <= 1


def test_weights_share_dispatches_in_proportion() -> None:
    arrivals = [Arrival(0.0, "big", 3) for _ in range(400)]
    arrivals += [Arrival(0.0, "small", 1) for _ in range(400)]
    log = simulate(arrivals, fleet_of(("a1", 1)), service_s=0.001, until=0.35, starvation_s=60)

    counts = Counter(d.lane for d in log[:200])
    assert 2.5 <= counts["big"] / counts["small"] <= 3.5


def test_a_returning_lane_starts_at_the_minimum_pass_and_gets_no_credit() -> None:
    lanes = FairShare(starvation_s=60)
    for n in range(100):
        lanes.add("old", 1, "a1", f"o{n}", 0.0)
    for _ in range(50):
        lanes.next(0.0, lambda _: True)
    for n in range(10):
        lanes.add("new", 1, "a1", f"n{n}", 0.0)
    served = [lanes.next(0.0, lambda _: True) for _ in range(10)]
    assert [t.lane for t in served if t is not None].count("old") == 5


def test_the_rate_limit_caps_dispatches_per_second() -> None:
    fleet = fleet_of(("a1", 100))
    change = AllocationChanged(
        agent_id="a1",
        agent_type="worker",
        resources=Resources(concurrency_slots=100),
        max_rate_per_s=5.0,
        reason="throttle",
    )
    fleet.allocate(change, 0.0)
    log = simulate([Arrival(0.0, "l", 1) for _ in range(100)], fleet, 0.01, until=2.0)

    assert 10 <= len(log) <= 16  # 5 a second over 2 s, plus a burst of one second


def test_an_agent_without_a_free_slot_does_not_block_the_rest_of_its_lane() -> None:
    fleet = fleet_of(("busy", 1), ("free", 1))
    fleet.agents["busy"].take(0.0)
    lanes = FairShare(starvation_s=1)
    lanes.add("l", 1, "busy", "b0", 0.0)
    lanes.add("l", 1, "free", "f0", 0.0)

    ticket = lanes.next(0.0, lambda a: fleet.can_take(a, 0.0))
    assert ticket is not None
    assert ticket.command_id == "f0"
    assert lanes.next(0.0, lambda a: fleet.can_take(a, 0.0)) is None
    assert lanes.queued() == 1


def test_removing_an_agent_takes_its_items_off_every_lane() -> None:
    lanes = FairShare(starvation_s=1)
    lanes.add("x", 1, "gone", "g0", 0.0)
    lanes.add("y", 2, "gone", "g1", 0.0)
    lanes.add("y", 2, "stays", "s0", 0.0)

    removed = lanes.remove_agent("gone")
    assert sorted(t.command_id for t in removed) == ["g0", "g1"]
    assert lanes.queued() == 1
    assert lanes.queued_for("gone") == 0
    state = {s.lane: s for s in lanes.state(5.0)}
    assert state["y"].queued == 1
    assert state["y"].oldest_wait_s == 5.0
    assert state["x"].queued == 0


def test_idle_empty_lanes_are_forgotten() -> None:
    lanes = FairShare(starvation_s=1)
    lanes.add("once", 1, "a1", "c0", 0.0)
    lanes.next(0.0, lambda _: True)
    lanes.forget_idle(10.0, idle_s=60)
    assert "once" in lanes.lanes
    lanes.forget_idle(61.0, idle_s=60)
    assert "once" not in lanes.lanes
