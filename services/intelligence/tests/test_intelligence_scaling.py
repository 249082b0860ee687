"""Expansive adaptation as plain data: sustained queueing proposes more agents of a type,
calm proposes the count it started from; short or small queues propose nothing."""

from __future__ import annotations

from vsm.contract.coordination import QueuePressure, TypePressure
from vsm.contract.policy import AdaptationPolicy
from vsm.intelligence.scaling import ScaleParams, Scaling, proposal

PARAMS = ScaleParams(queued_per_agent=2, sustain_s=10, calm_s=20, max_step=3)


def reading(agents: int, queued: int, in_flight: int = 0) -> QueuePressure:
    return QueuePressure(
        types={"worker": TypePressure(agents=agents, queued=queued, in_flight=in_flight)}
    )


def test_sustained_queueing_scales_up_then_calm_scales_back_down() -> None:
    scaling = Scaling(PARAMS)
    assert scaling.read(reading(1, 9), 0.0) == []
    assert scaling.read(reading(1, 9), 5.0) == []
    (up,) = scaling.read(reading(1, 9), 10.0)
    assert (up.agent_type, up.agents) == ("worker", 4)  # ceil(9/2)=5, at most 3 more
    assert scaling.read(reading(4, 9), 15.0) == []  # the next step waits another sustain
    assert scaling.read(reading(4, 0, in_flight=2), 16.0) == []  # still working
    assert scaling.read(reading(4, 0), 20.0) == []
    assert scaling.read(reading(4, 0), 39.0) == []
    (down,) = scaling.read(reading(4, 0), 40.0)
    assert (down.agents, "back down from 4 to 1" in down.why) == (1, True)
    assert scaling.read(reading(1, 0), 100.0) == []


def test_calm_is_judged_by_time_not_by_how_many_readings_came() -> None:
    """S2 says an unchanged idle reading again only at its refresh: two readings suffice."""
    scaling = Scaling(PARAMS)
    scaling.read(reading(1, 9), 0.0)
    scaling.read(reading(1, 9), 10.0)  # up to 4
    assert scaling.read(reading(4, 0), 11.0) == []  # calm from here, then nothing is said
    (down,) = scaling.read(reading(4, 0), 71.0)  # the refresh, 60 s on
    assert down.agents == 1


def test_a_short_burst_or_a_small_queue_proposes_nothing() -> None:
    scaling = Scaling(PARAMS)
    assert scaling.read(reading(2, 5), 0.0) == []
    assert scaling.read(reading(2, 1), 5.0) == []  # the burst ended
    assert scaling.read(reading(2, 5), 12.0) == []  # pressure starts over
    assert scaling.read(reading(2, 4), 30.0) == []  # 4 is not over 2 per agent x 2


def test_work_for_a_type_with_no_agent_asks_for_some() -> None:
    scaling = Scaling(PARAMS)
    scaling.read(reading(0, 3), 0.0)
    (up,) = scaling.read(reading(0, 3), 10.0)
    assert up.agents == 2


def test_the_proposal_is_an_expansive_adaptation_policy_with_its_scale() -> None:
    scaling = Scaling(PARAMS)
    scaling.read(reading(1, 9), 0.0)
    (up,) = scaling.read(reading(1, 9), 10.0)
    made = proposal(up)
    policy = AdaptationPolicy.model_validate(made.policy)
    assert (made.kind, policy.mode, policy.scale) == ("expansive", "expansive", {"worker": 4})
    assert made.evidence["queued"] == 9
