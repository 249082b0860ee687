"""S4's model of one viable system's environment: what each source said, turned into events
(for variety), series samples (for anomaly detection) and facts (for the rules).

Health heartbeats are the services', shared by every system they host (`Sightings`); they
count as an event only when a service's state changes: a repeated "still up" carries no new
variety. Memory is bounded per system: at most `max_series` series and `max_sources`
productivity reports, the least recently fed evicted first; the event window and the felt
signals are bounded by `EventWindow.capacity` and `MAX_FELT`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.health import HealthReport
from vsm.contract.intelligence import Observation
from vsm.contract.operations import CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.contract.rules import Fact
from vsm.intelligence.anomaly import Anomaly, DetectorParams, SeriesState, observe
from vsm.intelligence.variety import Event, EventWindow

MAX_READINGS = 16
"""Numeric entries of one S1 result taken as sensor readings (series); the rest are ignored."""
MAX_FIELDS = 16
"""Text attributes of an observation a rule may group or filter by."""
MAX_FELT = 10_000
FORGET_AFTER_S = 3600.0
"""Health sightings and productivity reports older than this are forgotten (gone instances)."""


@dataclass(frozen=True)
class Sighting:
    state: str
    at: float
    interval_s: float


Sightings = dict[tuple[str, str], Sighting]
"""The latest heartbeat of each (service, instance)."""


@dataclass(frozen=True)
class Felt:
    at: float
    kind: str
    intensity: float


@dataclass
class Environment:
    """Everything S4 has learned about one viable system, as plain data."""

    detector: DetectorParams = field(default_factory=DetectorParams)
    window: EventWindow = field(default_factory=EventWindow)
    max_series: int = 2_000
    max_sources: int = 1_000
    series: dict[str, SeriesState] = field(default_factory=dict)
    series_source: dict[str, str] = field(default_factory=dict)
    felt: deque[Felt] = field(default_factory=lambda: deque(maxlen=MAX_FELT))
    productivity: dict[str, tuple[float, float]] = field(default_factory=dict)
    evicted_series: int = 0

    def sample(self, source: str, name: str, value: float, at: float) -> Anomaly | None:
        """Feed one sample of series `name`; beyond `max_series` the stalest series goes."""
        state = self.series.pop(name, None)
        if state is None:
            if len(self.series) >= self.max_series:
                stalest = next(iter(self.series))
                del self.series[stalest]
                self.series_source.pop(stalest, None)
                self.evicted_series += 1
            state = SeriesState()
            self.series_source[name] = source
        self.series[name] = state  # the most recently fed series last
        anomaly = observe(state, name, value, at, self.detector)
        if anomaly is not None:
            self.window.add_anomaly(at)
        return anomaly

    def productive(self, agent_id: str, at: float, productivity: float) -> None:
        self.productivity.pop(agent_id, None)
        if len(self.productivity) >= self.max_sources:
            del self.productivity[next(iter(self.productivity))]
        self.productivity[agent_id] = (at, productivity)

    def expire(self, now: float) -> None:
        self.window.expire(now)
        horizon = now - self.window.window_s
        while self.felt and self.felt[0].at < horizon:
            self.felt.popleft()
        forget = now - FORGET_AFTER_S
        for agent in [a for a, (at, _) in self.productivity.items() if at < forget]:
            del self.productivity[agent]


def _samples(env: Environment, source: str, values: dict[str, float], at: float) -> list[Anomaly]:
    found = (env.sample(source, f"{source}.{name}", v, at) for name, v in values.items())
    return [a for a in found if a is not None]


def record_fact(env: Environment, fact: Fact, series: dict[str, float]) -> list[Anomaly]:
    """One fact: an event of its name from its source; `series` are sampled under the source."""
    source = fact.fields.get("source", "unknown")
    env.window.add(Event(fact.at, fact.event, source, fact.fields.get("agent_type", "")))
    return _samples(env, source, series, fact.at)


def observation_fact(seen: Observation, at: float) -> Fact:
    texts = {k: v for k, v in seen.attributes.items() if isinstance(v, str) and len(v) <= 256}
    fields = dict(list(texts.items())[:MAX_FIELDS]) | {"source": seen.source}
    return Fact(at, seen.event_type, dict(seen.values), fields)


def record_observation(env: Environment, seen: Observation, at: float) -> list[Anomaly]:
    return record_fact(env, observation_fact(seen, at), dict(seen.values))


def performance_fact(report: UnitPerformance, at: float) -> Fact:
    """An S1 unit's report: actuality, productivity and failure ratio are its readings."""
    values = {"actuality": report.actuality}
    if report.productivity is not None:
        values["productivity"] = report.productivity
    done = report.succeeded + report.failed
    if done:
        values["failure_ratio"] = report.failed / done
    fields = {
        "source": f"operations/{report.agent_id}",
        "agent_id": report.agent_id,
        "agent_type": report.agent_type,
    }
    return Fact(at, f"s1.performance.{report.agent_type}", values, fields)


def record_performance(env: Environment, report: UnitPerformance, at: float) -> list[Anomaly]:
    """A report, and the mix of work it summarises: each kind of work done in the window is
    that many events of `s1.work.<command>.<outcome>` for the variety (one entry each)."""
    fact = performance_fact(report, at)
    if report.productivity is not None:
        env.productive(report.agent_id, at, report.productivity)
    source = fact.fields["source"]
    for kind, count in report.work.items():
        if count > 0:
            env.window.add(Event(at, f"s1.work.{kind}", source, report.agent_type, count))
    return record_fact(env, fact, dict(fact.readings))


def readings(result: dict[str, object] | None) -> dict[str, float]:
    """The finite numbers at the top level of a result: what a sensor agent reports."""
    found = {
        key: float(value)
        for key, value in (result or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return {k: v for k, v in list(found.items())[:MAX_READINGS] if math.isfinite(v)}


def result_fact(result: CommandResult, at: float) -> Fact:
    """An S1 command result: an event (command, outcome), its time and readings."""
    values = {"processing_time_ms": result.processing_time_ms}
    if result.status == "ok":
        values |= readings(result.result)
    fields = {
        "source": f"operations/{result.agent_id}",
        "agent_id": result.agent_id,
        "command": result.command_type,
        "status": result.status,
    }
    if result.agent_type:
        fields["agent_type"] = result.agent_type
    return Fact(at, f"s1.result.{result.command_type}.{result.status}", values, fields)


def record_result(env: Environment, result: CommandResult, at: float) -> list[Anomaly]:
    fact = result_fact(result, at)
    series = {f"{result.command_type}.{name}": v for name, v in fact.readings.items()}
    return record_fact(env, fact, series)


def algedonic_fact(signal: AlgedonicSignal, at: float) -> Fact:
    fields = {"source": signal.origin, "kind": signal.kind, "reason": signal.reason}
    return Fact(
        at, f"algedonic.{signal.kind}.{signal.reason}", {"intensity": signal.intensity}, fields
    )


def record_algedonic(env: Environment, signal: AlgedonicSignal, at: float) -> list[Anomaly]:
    """Pain and pleasure are events of their own reason, and an intensity series per origin."""
    env.felt.append(Felt(at, signal.kind, signal.intensity))
    fact = algedonic_fact(signal, at)
    return record_fact(env, fact, {f"{signal.kind}.intensity": signal.intensity})


def record_health(sightings: Sightings, report: HealthReport, at: float) -> Fact | None:
    """Remember the report; a fact (an event) when the instance is new or changed state."""
    key = (report.service, report.instance)
    before = sightings.get(key)
    sightings[key] = Sighting(report.state, at, report.interval_s)
    forget = at - FORGET_AFTER_S
    for stale in [k for k, s in sightings.items() if s.at < forget]:
        del sightings[stale]
    if before is not None and before.state == report.state:
        return None
    fields = {"source": f"vsm/{report.service}", "service": report.service, "state": report.state}
    return Fact(at, f"health.{report.service}.{report.state}", {}, fields)
