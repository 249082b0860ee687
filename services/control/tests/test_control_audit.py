"""S3* judgement as plain data: findings and recommendations from answers and reports."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from vsm.contract.control import AgentAudit, Resources
from vsm.contract.operations import AgentInfo
from vsm.contract.performance import UnitPerformance
from vsm.control.audit import sample
from vsm.control.ledger import Ledger
from vsm.control.reports import audit_report
from vsm.control.system3 import System3

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def system3(*agents: tuple[str, int]) -> System3:
    ledger = Ledger(Resources(concurrency_slots=20))
    for agent_id, slots in agents:
        ledger.admit(
            AgentInfo(
                agent_id=agent_id,
                agent_type="worker",
                allocation=slots,
                max_allocation=64,
                spawned_at=NOW,
            )
        )
    return System3(ledger)


def performance(agent_id: str, succeeded: int, failed: int) -> UnitPerformance:
    return UnitPerformance(
        agent_id=agent_id,
        agent_type="worker",
        window_s=10,
        actuality=succeeded / 10,
        capability=4,
        potentiality=16,
        succeeded=succeeded,
        failed=failed,
    )


def answered(agent_id: str, in_flight: int = 0, waiting: int = 0) -> AgentAudit:
    report = {"allocation": 4, "in_flight": in_flight, "waiting": waiting}
    return AgentAudit(agent_id=agent_id, outcome="answered", report=report)


def codes(s3: System3, *answers: AgentAudit) -> dict[str, list[str]]:
    report = audit_report(
        s3,
        "root",
        list(answers),
        trigger="requested",
        audit_type="resource_audit",
        started_at=NOW,
        timeout_s=2,
    )
    assert len(report.findings) == len(report.recommendations)
    found: dict[str, list[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.agent_id, []).append(finding.code)
    return found


def test_each_finding_has_its_recommendation() -> None:
    s3 = system3(("idle", 4), ("busy", 2), ("bad", 2), ("quiet", 2), ("one", 1))
    s3.record_performance(performance("idle", 0, 0))
    s3.record_performance(performance("one", 0, 0))
    s3.record_performance(performance("bad", 1, 5))
    s3.record_performance(performance("busy", 30, 0))

    report = audit_report(
        s3,
        "root",
        [
            answered("idle"),
            answered("busy", in_flight=2, waiting=7),
            answered("bad", in_flight=1),
            AgentAudit(agent_id="quiet", outcome="timeout"),
            answered("one"),
        ],
        trigger="requested",
        audit_type="resource_audit",
        started_at=NOW,
        timeout_s=2,
    )

    assert [(f.agent_id, f.code) for f in report.findings] == [
        ("idle", "allocated_but_idle"),
        ("busy", "saturated"),
        ("bad", "failing"),
        ("quiet", "silent"),
    ]
    assert report.recommendations[0] == "reduce idle to 1 slot"
    assert "quiet" in report.recommendations[3]
    assert "2 s" in report.findings[3].detail
    assert s3.last_audit["root"] == report


def test_no_report_yet_is_no_evidence_of_idleness() -> None:
    s3 = system3(("new", 4))
    assert codes(s3, answered("new")) == {}


def test_a_state_dump_and_a_metrics_audit_are_read_as_well() -> None:
    s3 = system3(("a", 4), ("b", 4))
    dump = AgentAudit(
        agent_id="a",
        outcome="answered",
        report={"resources": {"in_flight": 0, "waiting": 3}},
    )
    metrics = AgentAudit(
        agent_id="b",
        outcome="answered",
        report={"performance": performance("b", 0, 4).model_dump(mode="json")},
    )
    assert codes(s3, dump, metrics) == {"a": ["saturated"], "b": ["failing"]}


def test_a_sporadic_sample_is_small_and_random() -> None:
    agents = [f"w-{i}" for i in range(10)]
    chosen = sample(agents, 3, random.Random(1))
    assert len(chosen) == 3
    assert set(chosen) <= set(agents)
    assert sample(agents[:2], 3, random.Random(1)) == ["w-0", "w-1"]
