"""System 4 over plain data: sources become events and series; scans, readiness, proposals."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter

from vsm.contract.adaptation import AdaptationProposal, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.health import HealthReport
from vsm.contract.intelligence import Observation
from vsm.contract.operations import CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import Policy
from vsm.intelligence import environment
from vsm.intelligence.system4 import System4

POLICY = TypeAdapter(Policy)


def health(service: str, state: str = "up") -> HealthReport:
    return HealthReport(
        service=service,
        instance=f"{service}-1",
        role="S4",
        state=state,  # type: ignore[arg-type]
        interval_s=1.0,
        started_at=datetime.now(UTC),
    )


def performance(actuality: float, productivity: float | None = None) -> UnitPerformance:
    return UnitPerformance(
        agent_id="w1",
        agent_type="worker",
        window_s=10,
        actuality=actuality,
        capability=10,
        potentiality=20,
        productivity=productivity,
        succeeded=9,
        failed=1,
    )


def heartbeat(s4: System4, report: HealthReport, at: float) -> bool:
    """What the handler does: remember the sighting, an event when the state changed."""
    changed = environment.record_health(s4.sightings, report, at)
    if changed is not None:
        environment.record_fact(s4.env, changed, {})
    return changed is not None


def test_heartbeats_are_variety_only_when_the_state_changes() -> None:
    s4 = System4()
    assert heartbeat(s4, health("control"), 1.0)
    assert not heartbeat(s4, health("control"), 2.0)
    assert heartbeat(s4, health("control", "degraded"), 3.0)
    assert [e.event_type for e in s4.env.window.events] == [
        "health.control.up",
        "health.control.degraded",
    ]


def test_performance_reports_feed_three_series() -> None:
    s4 = System4()
    environment.record_performance(s4.env, performance(8.0, 0.8), 1.0)
    assert set(s4.env.series) == {
        "operations/w1.actuality",
        "operations/w1.productivity",
        "operations/w1.failure_ratio",
    }
    assert s4.env.series_source["operations/w1.actuality"] == "operations/w1"


def test_an_anomalous_performance_becomes_an_alert_with_evidence() -> None:
    s4 = System4()
    for i in range(12):
        assert environment.record_performance(s4.env, performance(10.0 + (i % 3) * 0.2), i) == []
    found = environment.record_performance(s4.env, performance(55.0), 20.0)
    assert [a.series for a in found] == ["operations/w1.actuality"]
    alert = s4.anomaly_alert(found[0])
    assert alert.kind == "anomaly"
    assert alert.source == "operations/w1"
    assert alert.evidence["value"] == 55.0
    assert "operations/w1.actuality" in alert.summary
    assert s4.alerts_raised == 1
    assert [a.series for a in s4.open_anomalies()] == ["operations/w1.actuality"]


def test_sensor_readings_in_s1_results_are_series() -> None:
    s4 = System4()
    result = CommandResult(
        agent_id="sensor-1",
        command_id="c1",
        command_type="read",
        status="ok",
        result={"temperature": 21.5, "label": "x", "ok": True, "humidity": 40},
        processing_time_ms=3.0,
    )
    environment.record_result(s4.env, result, 1.0)
    assert set(s4.env.series) == {
        "operations/sensor-1.read.processing_time_ms",
        "operations/sensor-1.read.temperature",
        "operations/sensor-1.read.humidity",
    }
    assert s4.env.window.events[-1].event_type == "s1.result.read.ok"


def test_observations_and_algedonic_signals_count_towards_variety() -> None:
    s4 = System4()
    environment.record_observation(
        s4.env, Observation(source="radar", event_type="competitor.price_cut", values={"p": 1}), 1
    )
    environment.record_algedonic(
        s4.env, AlgedonicSignal(kind="pain", intensity=0.5, origin="ops/w1", reason="burst"), 2
    )
    report = s4.need(3.0).variety
    assert report.distinct_types == 2
    assert report.distinct_sources == 2
    assert "radar.p" in s4.env.series


def test_readiness_comes_from_measured_factors() -> None:
    s4 = System4()
    heartbeat(s4, health("control"), 9.0)
    heartbeat(s4, health("queen", "degraded"), 9.0)
    environment.record_algedonic(
        s4.env, AlgedonicSignal(kind="pain", intensity=0.6, origin="o", reason="r"), 9.0
    )
    environment.record_algedonic(
        s4.env, AlgedonicSignal(kind="pleasure", intensity=0.2, origin="o", reason="r"), 9.0
    )
    environment.record_performance(s4.env, performance(8.0, 0.5), 9.0)
    ready = s4.readiness(10.0)
    assert ready.factors == {
        "health": 0.5,
        "stability": 1.0,
        "balance": 0.25,
        "productivity": 0.5,
    }
    assert ready.readiness == 0.5625
    later = s4.readiness(30.0)  # heartbeats are stale: nothing is up any more
    assert later.factors["health"] == 0.0


def as_s5_validates(proposal: AdaptationProposal) -> Policy:
    return POLICY.validate_python({**proposal.policy, "policy_type": proposal.policy_type})


def request(pain: float) -> AdaptationRequest:
    return AdaptationRequest(intervention_id="iv-1", trigger="error_burst", pain_level=pain)


def ready_system() -> System4:
    s4 = System4()
    for service in ("queen", "control"):
        heartbeat(s4, health(service), 0.0)
    return s4


def test_severe_pain_gets_a_defensive_proposal_s5_can_validate() -> None:
    proposal = ready_system().propose(request(0.9), 1.0)
    assert proposal.kind == "defensive"
    assert proposal.request_id == "iv-1"
    assert proposal.policy_type == "adaptation"
    document = as_s5_validates(proposal)
    assert document.policy_type == "adaptation"
    assert document.mode == "defensive"  # type: ignore[union-attr]
    assert "error_burst" in proposal.rationale


def test_mild_pain_in_a_calm_environment_gets_an_incremental_proposal() -> None:
    proposal = ready_system().propose(request(0.3), 1.0)
    assert proposal.kind == "incremental"
    as_s5_validates(proposal)


def test_high_variety_gets_a_transformational_proposal() -> None:
    s4 = ready_system()
    for i in range(600):
        seen = Observation(source=f"src{i % 15}", event_type=f"type{i % 40}")
        environment.record_observation(s4.env, seen, i / 10)
    proposal = s4.propose(request(0.3), 60.0)
    assert proposal.kind == "transformational"
    assert proposal.evidence["meta_system_need"]["score"] >= 0.6
    as_s5_validates(proposal)


def test_a_scan_raises_one_variety_alert_per_crossing() -> None:
    s4 = ready_system()
    for i in range(600):
        seen = Observation(source=f"src{i % 15}", event_type=f"type{i % 40}")
        environment.record_observation(s4.env, seen, i / 10)
    first, alerts = s4.scan(60.0, "scheduled", "scheduled")
    assert first.meta_system_need.recommended
    assert [a.kind for a in alerts] == ["variety"]
    _, again = s4.scan(61.0, "scheduled", "scheduled")
    assert again == []
    assert s4.scans == 2
