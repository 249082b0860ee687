"""S4's model of its environment: what each source said, turned into events and series.

Every input becomes an event (for variety) and zero or more series samples (for anomaly
detection). Health heartbeats count as an event only when a service's state changes: a
repeated "still up" carries no new variety.
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
from vsm.intelligence.anomaly import Anomaly, DetectorParams, SeriesState, observe
from vsm.intelligence.variety import Event, EventWindow

MAX_READINGS = 16
"""Numeric entries of one S1 result taken as sensor readings (series); the rest are ignored."""
FORGET_AFTER_S = 3600.0
"""Health sightings and productivity reports older than this are forgotten (gone instances)."""


@dataclass(frozen=True)
class Sighting:
    state: str
    at: float
    interval_s: float


@dataclass(frozen=True)
class Felt:
    at: float
    kind: str
    intensity: float


@dataclass
class Environment:
    """Everything S4 has learned, as plain data; the handlers own one and feed it."""

    detector: DetectorParams = field(default_factory=DetectorParams)
    window: EventWindow = field(default_factory=EventWindow)
    max_series: int = 5_000
    series: dict[str, SeriesState] = field(default_factory=dict)
    series_source: dict[str, str] = field(default_factory=dict)
    health: dict[tuple[str, str], Sighting] = field(default_factory=dict)
    felt: deque[Felt] = field(default_factory=deque)
    productivity: dict[str, tuple[float, float]] = field(default_factory=dict)
    dropped_series: int = 0

    def sample(self, source: str, name: str, value: float, at: float) -> Anomaly | None:
        """Feed one sample of series `name`; new series beyond `max_series` are not tracked."""
        state = self.series.get(name)
        if state is None:
            if len(self.series) >= self.max_series:
                self.dropped_series += 1
                return None
            state = self.series[name] = SeriesState()
            self.series_source[name] = source
        anomaly = observe(state, name, value, at, self.detector)
        if anomaly is not None:
            self.window.add_anomaly(at)
        return anomaly

    def expire(self, now: float) -> None:
        self.window.expire(now)
        horizon = now - self.window.window_s
        while self.felt and self.felt[0].at < horizon:
            self.felt.popleft()
        forget = now - FORGET_AFTER_S
        for key in [k for k, s in self.health.items() if s.at < forget]:
            del self.health[key]
        for agent in [a for a, (at, _) in self.productivity.items() if at < forget]:
            del self.productivity[agent]


def _samples(env: Environment, source: str, values: dict[str, float], at: float) -> list[Anomaly]:
    found = (env.sample(source, f"{source}.{name}", v, at) for name, v in values.items())
    return [a for a in found if a is not None]


def record_observation(env: Environment, seen: Observation, at: float) -> list[Anomaly]:
    env.window.add(Event(at, seen.event_type, seen.source))
    return _samples(env, seen.source, seen.values, at)


def record_performance(env: Environment, report: UnitPerformance, at: float) -> list[Anomaly]:
    """An S1 unit's report: actuality, productivity and failure ratio are its series."""
    source = f"operations/{report.agent_id}"
    env.window.add(Event(at, f"s1.performance.{report.agent_type}", source))
    values = {"actuality": report.actuality}
    if report.productivity is not None:
        values["productivity"] = report.productivity
        env.productivity[report.agent_id] = (at, report.productivity)
    done = report.succeeded + report.failed
    if done:
        values["failure_ratio"] = report.failed / done
    return _samples(env, source, values, at)


def readings(result: dict[str, object] | None) -> dict[str, float]:
    """The finite numbers at the top level of a result: what a sensor agent reports."""
    found = {
        key: float(value)
        for key, value in (result or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return {k: v for k, v in list(found.items())[:MAX_READINGS] if math.isfinite(v)}


def record_result(env: Environment, result: CommandResult, at: float) -> list[Anomaly]:
    """An S1 command result: an event (command, outcome); its time and readings are series."""
    source = f"operations/{result.agent_id}"
    env.window.add(Event(at, f"s1.result.{result.command_type}.{result.status}", source))
    values = {f"{result.command_type}.processing_time_ms": result.processing_time_ms}
    if result.status == "ok":
        for name, value in readings(result.result).items():
            values[f"{result.command_type}.{name}"] = value
    return _samples(env, source, values, at)


def record_algedonic(env: Environment, signal: AlgedonicSignal, at: float) -> list[Anomaly]:
    """Pain and pleasure are events of their own reason, and an intensity series per origin."""
    env.window.add(Event(at, f"algedonic.{signal.kind}.{signal.reason}", signal.origin))
    env.felt.append(Felt(at, signal.kind, signal.intensity))
    return _samples(env, signal.origin, {f"{signal.kind}.intensity": signal.intensity}, at)


def record_health(env: Environment, report: HealthReport, at: float) -> bool:
    """Remember the report; True (and an event) when the instance is new or changed state."""
    key = (report.service, report.instance)
    before = env.health.get(key)
    env.health[key] = Sighting(report.state, at, report.interval_s)
    if before is not None and before.state == report.state:
        return False
    env.window.add(Event(at, f"health.{report.service}.{report.state}", f"vsm/{report.service}"))
    return True
