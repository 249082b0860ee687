"""Adaptation readiness: can the organisation afford to change now? Measured, not assumed.

Factors (each 0..1, present only when S4 has the measurement):
  health     - share of services whose latest heartbeat is fresh and "up" (the services
               are shared: a child system runs in the services of its release);
  stability  - 1 - anomaly episodes in the window / `reference_anomalies` (floored at 0);
  balance    - algedonic balance: (pleasure - pain) / (pleasure + pain) intensities in the
               window, mapped from -1..1 onto 0..1;
  productivity - mean S1 productivity (actuality / capability, capped at 1) of recent reports.
Readiness is the mean of the factors present (stability always is).
"""

from __future__ import annotations

from vsm.intelligence.environment import Environment, Sightings

FRESH_INTERVALS = 2.5
"""A heartbeat older than this many of its own intervals no longer counts as "up"."""
REFERENCE_ANOMALIES = 5


def factors(env: Environment, sightings: Sightings, now: float) -> dict[str, float]:
    env.expire(now)
    measured: dict[str, float] = {}
    latest: dict[str, bool] = {}
    for (service, _), seen in sightings.items():
        fresh = now - seen.at <= seen.interval_s * FRESH_INTERVALS
        latest[service] = latest.get(service, False) or (fresh and seen.state == "up")
    if latest:
        measured["health"] = sum(latest.values()) / len(latest)
    measured["stability"] = max(0.0, 1 - len(env.window.anomalies) / REFERENCE_ANOMALIES)
    pain = sum(f.intensity for f in env.felt if f.kind == "pain")
    pleasure = sum(f.intensity for f in env.felt if f.kind == "pleasure")
    if pain + pleasure > 0:
        measured["balance"] = (1 + (pleasure - pain) / (pleasure + pain)) / 2
    horizon = now - env.window.window_s
    recent = [min(1.0, p) for at, p in env.productivity.values() if at >= horizon]
    if recent:
        measured["productivity"] = sum(recent) / len(recent)
    return {name: round(value, 4) for name, value in measured.items()}


def readiness(measured: dict[str, float]) -> float:
    return round(sum(measured.values()) / len(measured), 4) if measured else 0.0
