"""S4's rules over what it observes, per viable system: what their firings say, and the
rules a system declares refused whole, with field, line and column, when one is bad."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vsm.contract.adaptation import AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.errors import ErrorReply
from vsm.contract.intelligence import IntelligenceAlert, Observation
from vsm.contract.operations import CommandResult
from vsm.contract.rules import RuleDeclaration
from vsm.intelligence import app
from vsm.intelligence import environment as env
from vsm.intelligence.settings import Settings
from vsm.intelligence.system4 import System4
from vsm.intelligence.systems import ViableSystems

SOURCES = '[{"name": "weather", "url": "https://api.example.com/now", "readings": {"temp": "$.t"}}]'


def settings(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    """Settings as the service reads them: from its environment."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings()


def rule(name: str, when: str, then: str) -> RuleDeclaration:
    return RuleDeclaration(name=name, when=when, then=then)


def result(agent: str, status: str = "ok", **readings: float) -> CommandResult:
    return CommandResult(
        agent_id=agent,
        command_id="c",
        command_type="read",
        status=status,  # type: ignore[arg-type]
        result=dict(readings) if status == "ok" else None,
        error={"code": "boom", "message": "boom"} if status == "error" else None,
        processing_time_ms=3.0,
    )


def world(settings: Settings | None = None) -> tuple[ViableSystems, System4]:
    settings = settings or Settings()
    rulesets = app.build_rulesets(settings)
    systems = app.build_systems(settings, rulesets)
    systems.spawned("root/logistics")
    child = systems.get("root/logistics")
    assert child is not None
    return systems, child


def adopt(systems: ViableSystems, system: System4, *rules: RuleDeclaration) -> None:
    assert app.build_rulesets(Settings()).adopt(system, list(rules)) is None


def test_a_compound_rule_on_sensor_readings_raises_one_pain_for_its_system() -> None:
    systems, child = world()
    adopt(systems, child, rule("hot-and-full", "cpu > 0.8 and mem > 0.9 for 10s", "pain 0.8"))
    said = []
    for t in range(30):
        fact = env.result_fact(result("sensor-1", cpu=0.95, mem=0.5 if t < 10 else 0.97), t)
        said += child.judge(fact)
    [pain] = said
    assert isinstance(pain, AlgedonicSignal)
    assert (pain.kind, pain.intensity, pain.reason) == ("pain", 0.8, "hot-and-full")
    assert pain.origin == "intelligence/rule/hot-and-full"
    assert pain.context["cpu"] == 0.95
    assert pain.context["mem"] == 0.97
    root = systems.get("root")
    assert root is not None
    assert root.judgement.declared == []  # the child's rules are its own


def test_observe_and_alert_outcomes_with_grouping_by_source() -> None:
    _, child = world()
    adopt(
        _,
        child,
        rule("failing", "count('s1.result.*.error') over 5s >= 2 by source", "alert critical"),
        rule("seen", "count('s1.result.*.error') over 5s >= 1", "observe"),
    )
    said = []
    for t in range(8):
        for agent in ("a", "b"):
            failing = agent == "a" or t == 7
            said += child.judge(env.result_fact(result(agent, "error" if failing else "ok"), t))
    alerts = [m for m in said if isinstance(m, IntelligenceAlert)]
    assert [a.evidence["group"] for a in alerts] == ["operations/a"]
    assert alerts[0].kind == "rule"
    assert alerts[0].severity == "critical"
    assert "root/logistics" in alerts[0].summary
    [seen] = [m for m in said if isinstance(m, Observation)]
    assert (seen.source, seen.event_type) == ("rule/seen", "rule.seen")
    assert child.alerts_raised == 1


def test_standing_rules_are_judged_by_every_system_with_a_memory_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standing = (
        '[{"name": "pained", "when": "count(algedonic.pain.r) over 1s >= 1", "then": "observe"}]'
    )
    systems, child = world(settings(monkeypatch, S4_RULES=standing))
    root = systems.get("root")
    assert root is not None
    signal = AlgedonicSignal(kind="pain", intensity=0.5, origin="o", reason="r")
    assert child.judge_time(0.0) == []
    assert root.judge_time(0.0) == []
    [seen] = child.judge(env.algedonic_fact(signal, 1.0))
    assert isinstance(seen, Observation)
    assert seen.event_type == "rule.pained"
    assert root.judge_time(1.0) == []  # the root felt nothing


def test_a_bad_rule_set_is_refused_whole_naming_field_line_and_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured = settings(
        monkeypatch, S4_SOURCES=SOURCES, EGRESS_ALLOWED_URLS='["https://api.example.com/"]'
    )
    systems, child = world(configured)
    rulesets = app.build_rulesets(configured)
    adopt(systems, child, rule("kept", "x > 1", "pain 0.5"))
    refusal = rulesets.adopt(
        child,
        [
            rule("ok", "weather.temp > 30", "alert warning"),
            rule("typo", "weather.tmp > 30", "alert warning"),
            rule("long", "avg(weather.temp) over 2h > 30", "observe"),
            rule("broken", "x >\n  and y", "pain 0.5"),
        ],
    )
    assert isinstance(refusal, ErrorReply)
    assert refusal.code == "invalid_rules"
    errors = refusal.details["errors"]
    assert [(e["field"], e["line"], e["column"]) for e in errors] == [
        ("rules.1.when", 1, 1),
        ("rules.2.when", 1, 24),
        ("rules.3.when", 2, 3),
    ]
    assert "source 'weather' reads no 'tmp' (it reads temp)" in errors[0]["message"]
    assert "windows are bounded" in errors[1]["message"]
    assert [r.name for r in child.judgement.declared] == ["kept"]  # nothing changed


def test_standing_rules_are_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = '[{"name": "r", "when": "count(x) over 2d > 1", "then": "pain 0.5"}]'
    with pytest.raises(ValidationError) as refused:
        settings(monkeypatch, S4_RULES=bad)
    [problem] = refused.value.errors()
    assert problem["loc"] == ("S4_RULES", 0, "when")
    assert "line 1, column 15" in problem["msg"]
    tight = '[{"name": "r", "when": "count(x) over 2h > 1", "then": "pain 0.5"}]'
    with pytest.raises(ValidationError, match="windows are bounded"):
        settings(monkeypatch, S4_RULES=tight, RULE_MAX_WINDOW="3600")
    assert settings(monkeypatch, S4_RULES=tight, RULE_MAX_WINDOW="7200").standing_rules()


def overload(system: System4, start: float, seconds: int) -> None:
    """Ten events a second of 40 kinds from 15 sources, one of them (`radar-0`) the busiest."""
    for i in range(seconds * 10):
        source = "radar-0" if i % 3 == 0 else f"radar-{i % 15}"
        seen = Observation(source=source, event_type=f"blip-{i % 40}")
        env.record_observation(system.env, seen, start + i / 10)


def test_a_sustained_need_for_a_meta_system_is_a_rule_over_scans() -> None:
    systems, child = world()
    adopt(
        systems,
        child,
        rule("overloaded", "min(need.score) over 30s >= need.threshold for 30s", "observe"),
    )
    said = []
    for second in range(0, 120, 5):
        overload(child, second, 5)
        result, _ = child.scan(second + 5, "scheduled", "scheduled")
        said += child.judge_scan(result, second + 5)
    [seen] = said
    assert isinstance(seen, Observation)
    assert seen.event_type == "rule.overloaded"
    assert seen.attributes["min(need.score) over 30s"] >= 0.6


def test_a_transformational_proposal_names_the_work_that_overloads() -> None:
    _, child = world()
    overload(child, 0, 60)
    request = AdaptationRequest(intervention_id="iv", trigger="variety", pain_level=0.2)
    proposal = child.propose(request, 60.0)
    assert proposal.kind == "transformational"
    named = proposal.evidence["overloading"]
    assert named["sources"][0] == "radar-0"
    assert len(named["event_types"]) == 5
    assert named["score"] >= named["threshold"]
