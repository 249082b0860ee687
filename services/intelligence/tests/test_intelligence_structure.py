"""Variety overload grows structure: S4 proposes handing the busiest agent type to a child
only when variety has exceeded capacity for the whole window, once per episode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import AdaptationPolicy
from vsm.intelligence.environment import Environment, record_performance
from vsm.intelligence.meta_system import NeedParams, meta_system_need
from vsm.intelligence.structure import Overload, StructureParams, busiest_part, proposal
from vsm.intelligence.system4 import System4
from vsm.intelligence.variety import Event, EventWindow, variety_report

PARAMS = NeedParams(threshold=0.3)


def busy(window: EventWindow, start: float, seconds: int, part: str = "worker") -> None:
    """Ten distinct events a second from four sources, `part`'s agents doing the work."""
    for i in range(seconds * 10):
        at = start + i / 10
        window.add(Event(at, f"s1.result.kind{i % 8}.ok", f"operations/a{i % 4}", part))


def test_variety_beyond_capacity_for_the_window_proposes_a_child_for_the_busiest_type() -> None:
    window = EventWindow(window_s=10)
    overload = Overload(StructureParams(sustain_s=3))
    busy(window, 0, 10)
    answers = []
    for now in (10.0, 11.0, 12.0, 13.0, 14.0):
        busy(window, now, 1)
        need = meta_system_need(variety_report(window, now), PARAMS)
        assert need.recommended
        answers.append(overload.read(need, busiest_part(window, "root"), now))
    assert answers == [False, False, False, True, False]  # after 3 s, and only once

    need = meta_system_need(variety_report(window, 14.0), PARAMS)
    part = busiest_part(window, "root")
    assert part == ("worker", 1.0)
    proposed = proposal("root", need, part, 3.0)
    policy = AdaptationPolicy.model_validate(proposed.policy)
    assert (proposed.kind, policy.mode, policy.delegate) == (
        "transformational",
        "transformational",
        ["worker"],
    )
    assert proposed.evidence["agent_type"] == "worker"
    assert "worker" in proposed.rationale


def test_a_single_spike_proposes_nothing_and_a_new_episode_may_propose_again() -> None:
    overload = Overload(StructureParams(sustain_s=3))
    window = EventWindow(window_s=10)
    busy(window, 0, 10)
    high = meta_system_need(variety_report(window, 10.0), PARAMS)
    calm = meta_system_need(variety_report(EventWindow(), 10.0), PARAMS)
    part = ("worker", 1.0)
    assert not overload.read(high, part, 10.0)
    assert not overload.read(calm, part, 11.0)  # the spike is over: the episode ends
    assert not overload.read(high, part, 12.0)
    assert not overload.read(high, part, 14.0)
    assert overload.read(high, part, 15.0)
    assert not overload.read(high, part, 30.0)  # once per episode
    assert not overload.read(calm, part, 31.0)
    assert not overload.read(high, part, 32.0)
    assert overload.read(high, part, 35.0)


def test_no_part_to_name_or_too_small_a_share_proposes_nothing() -> None:
    overload = Overload(StructureParams(sustain_s=0, min_share=0.5))
    window = EventWindow(window_s=10)
    busy(window, 0, 10, part="")
    need = meta_system_need(variety_report(window, 10.0), PARAMS)
    assert busiest_part(window, "root") is None
    assert not overload.read(need, None, 10.0)
    assert not overload.read(need, ("worker", 0.2), 11.0)


def test_a_child_grown_for_a_type_does_not_hand_the_same_type_down_again() -> None:
    window = EventWindow(window_s=10)
    busy(window, 0, 10, part="llm_worker")
    assert busiest_part(window, "root") == ("llm_worker", 1.0)
    assert busiest_part(window, "root/llm-worker") is None


def test_a_system_s4_proposes_after_its_scans_see_the_overload_sustained() -> None:
    system = System4(
        vsm_id="root",
        env=Environment(window=EventWindow(window_s=10)),
        need_params=PARAMS,
        overload=Overload(StructureParams(sustain_s=2)),
    )
    busy(system.env.window, 0, 10)
    found = []
    for now in (10.0, 11.0, 12.0):
        busy(system.env.window, now, 1)
        result, _ = system.scan(now, "scheduled", "scheduled")
        found.append(system.structure(result, now))
    assert [p is None for p in found] == [True, True, False]
    last = found[-1]
    assert last is not None
    assert last.policy["delegate"] == ["worker"]
    assert system.proposals == 1


def report_of(work: dict[str, int]) -> UnitPerformance:
    """A worker's report of one second's work, its mix `work`."""
    done = sum(work.values())
    measures = {"actuality": done, "capability": done, "potentiality": done}
    return UnitPerformance(agent_id="w-1", agent_type="worker", window_s=1, work=work, **measures)


def test_a_performance_report_counts_its_mix_of_work_as_events_of_its_type() -> None:
    env = Environment(window=EventWindow(window_s=10))
    record_performance(env, report_of({"analyze.ok": 2, "transform.ok": 1}), 5.0)
    variety = variety_report(env.window, 5.0)
    assert variety.top_types == {
        "s1.work.analyze.ok": 2,
        "s1.work.transform.ok": 1,
        "s1.performance.worker": 1,
    }
    assert variety.events == 4
    assert busiest_part(env.window, "root") == ("worker", 1.0)


def test_a_report_with_an_absurd_mix_is_refused() -> None:
    with pytest.raises(ValidationError):
        report_of({f"k{i}.ok": 1 for i in range(33)})
    with pytest.raises(ValidationError):
        report_of({"k.ok": -1})
