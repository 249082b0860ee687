"""Viability over measured terms only; the rules synthesiser; escalation timing; decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsm.queen.algedonic import Episode
from vsm.queen.decisions import Situation, decide
from vsm.queen.interventions import (
    EscalationRules,
    Intervention,
    acknowledge,
    due,
    escalate,
    parent_of,
)
from vsm.queen.rules import Anomaly, candidates
from vsm.queen.viability import Reading, ViabilityInputs, viability

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_nothing_measured_means_viability_unknown_not_a_constant() -> None:
    result = viability(ViabilityInputs(), pain=0, pleasure=0, signals=0, now=NOW, freshness_s=60)
    assert result.score is None
    assert result.coverage == 0


def test_viability_renormalises_over_the_measured_terms() -> None:
    inputs = ViabilityInputs(
        s1={"a": Reading(0.8, NOW), "b": Reading(0.4, NOW)},
        readiness=Reading(1.0, NOW),
    )
    result = viability(inputs, pain=0.5, pleasure=0.1, signals=3, now=NOW, freshness_s=60)
    # s1 = 0.6 (w .3), algedonic = 0.5 + (0.1 - 0.5)/2 = 0.3 (w .2), s4 = 1.0 (w .2)
    assert result.score == pytest.approx((0.3 * 0.6 + 0.2 * 0.3 + 0.2 * 1.0) / 0.7, abs=1e-4)
    assert result.coverage == pytest.approx(0.7)
    unknown = {t.name for t in result.terms if t.value is None}
    assert unknown == {"s2_stability", "s3_headroom"}


def test_stale_readings_are_unknown() -> None:
    inputs = ViabilityInputs(s1={"a": Reading(0.8, NOW - timedelta(seconds=120))})
    result = viability(inputs, pain=0, pleasure=0, signals=0, now=NOW, freshness_s=60)
    assert result.score is None


def test_the_s1_mean_follows_new_readings_and_staleness_without_walking_every_tick() -> None:
    inputs = ViabilityInputs()
    inputs.s1["a"] = Reading(0.8, NOW)
    inputs.s1["b"] = Reading(0.4, NOW + timedelta(seconds=30))

    def s1(at: datetime) -> float | None:
        found = viability(inputs, pain=0, pleasure=0, signals=0, now=at, freshness_s=60)
        return next(t.value for t in found.terms if t.name == "s1_performance")

    assert s1(NOW + timedelta(seconds=31)) == pytest.approx(0.6)
    kept = inputs.mean_s1
    assert s1(NOW + timedelta(seconds=40)) == pytest.approx(0.6)
    assert inputs.mean_s1 is kept  # nothing changed, nothing went stale: not walked again
    assert s1(NOW + timedelta(seconds=61)) == pytest.approx(0.4)  # "a" went stale
    inputs.s1["b"] = Reading(1.0, NOW + timedelta(seconds=62))
    assert s1(NOW + timedelta(seconds=62)) == pytest.approx(1.0)  # a new reading counts at once
    del inputs.s1["b"]
    assert s1(NOW + timedelta(seconds=62)) is None


def test_a_rate_anomaly_throttles_its_target_and_keeps_other_limits() -> None:
    found = candidates(Anomaly("error_burst", 1.0, {"agent_id": "w1"}), {})
    assert [c.policy_type for c in found] == ["throttle", "adaptation"]
    limits = found[0].document["limits"]
    assert limits == [
        {"target": "w1", "max_rate_per_s": 5.0, "reason": "error_burst at severity 1.00"}
    ]


def test_budget_pain_throttles_the_spender_to_the_rate_its_share_sustains() -> None:
    slow = {"agent_id": "w1", "sustainable_rate_per_s": 0.02}
    fast = {"agent_id": "w1", "sustainable_rate_per_s": 500}
    (throttle, _), (capped, _) = (candidates(Anomaly("budget", 0.8, c), {}) for c in (slow, fast))
    assert throttle.document["limits"][0]["max_rate_per_s"] == 0.1  # never below the floor
    assert capped.document["limits"][0]["max_rate_per_s"] == 6.0  # never above the cut
    assert "w1 spends its LLM budget too fast" in throttle.rationale
    (whole, _) = candidates(Anomaly("budget", 0.9, {"target": "*"}), {})
    assert whole.document["limits"][0]["target"] == "*"


def test_other_anomalies_get_an_adaptation_policy_by_severity() -> None:
    (mild,) = candidates(Anomaly("drift", 0.2), {})
    (severe,) = candidates(Anomaly("drift", 0.9), {})
    assert mild.document["mode"] == "incremental"
    assert severe.document["mode"] == "defensive"


def intervention(vsm_id: str = "root/a") -> Intervention:
    episode = Episode(trigger="pain_threshold", opened_at=NOW, pain_at_open=0.9)
    return Intervention(vsm_id=vsm_id, episode=episode, cause=None)


def test_escalation_is_due_every_deadline_up_to_the_maximum_and_stops_on_ack() -> None:
    rules = EscalationRules(deadline_s=10, max_levels=2)
    iv = intervention()
    assert not due(iv, NOW + timedelta(seconds=9), rules)
    assert due(iv, NOW + timedelta(seconds=10), rules)
    escalate(iv, NOW + timedelta(seconds=10))
    assert not due(iv, NOW + timedelta(seconds=15), rules)
    assert due(iv, NOW + timedelta(seconds=20), rules)
    iv.alert_ids.append("al-1")
    assert acknowledge({iv.id: iv}, "al-1") is iv
    assert iv.status == "acknowledged"
    assert not due(iv, NOW + timedelta(seconds=100), rules)
    assert acknowledge({iv.id: iv}, "al-unknown") is None


def test_the_parent_of_a_viable_system_is_its_path_prefix() -> None:
    assert parent_of("root/a/b") == "root/a"
    assert parent_of("root/a") == "root"
    assert parent_of("root") is None


def situation(**changes: object) -> Situation:
    base = {
        "pain": 0.1,
        "pleasure": 0.0,
        "threshold": 0.7,
        "resolve_below": 0.3,
        "viability": 0.8,
        "readiness": 0.5,
        "open_interventions": 0,
        "overdue_interventions": 0,
        "has_identity": True,
    }
    return Situation(**(base | changes))  # type: ignore[arg-type]


def test_decisions_follow_the_situation_and_give_steps() -> None:
    calm = decide("d1", "adaptation", {}, situation())
    hurting = decide("d2", "adaptation", {}, situation(pain=0.9))
    assert calm.decision == "adapt incrementally"
    assert hurting.decision == "adapt defensively"
    assert hurting.steps
    allocation = decide("d3", "resource_allocation", {"demands": {"a": 3, "b": 1}}, situation())
    assert "'a': 0.675" in allocation.steps[0]
    missing = decide("d4", "resource_allocation", {}, situation())
    assert missing.decision == "cannot allocate"
