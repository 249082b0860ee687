"""Viability: one documented formula over measured inputs only (see the README).

score = sum(w_i * v_i) / sum(w_i) over the terms i that are measured; coverage = the
measured terms' share of the total weight. A term that was never reported (or whose
reports are stale) is unknown: it is left out, never replaced by a made-up constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vsm.contract.system5 import Viability, ViabilityTerm

WEIGHTS: dict[str, float] = {
    "s1_performance": 0.30,
    "algedonic_balance": 0.20,
    "s2_stability": 0.15,
    "s3_headroom": 0.15,
    "s4_readiness": 0.20,
}


@dataclass(frozen=True)
class Reading:
    value: float
    at: datetime


@dataclass
class ViabilityInputs:
    """What has been measured for one viable system."""

    s1: dict[str, Reading] = field(default_factory=dict)
    """Beer's performance index (actuality/potentiality) per S1 unit."""
    failures: dict[str, Reading] = field(default_factory=dict)
    """Share of each S1 unit's commands that failed in its last window."""
    readiness: Reading | None = None
    oscillation: Reading | None = None
    headroom: Reading | None = None


def clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def fresh(reading: Reading | None, now: datetime, freshness_s: float) -> Reading | None:
    if reading is None or (now - reading.at).total_seconds() > freshness_s:
        return None
    return reading


def s1_term(inputs: ViabilityInputs, now: datetime, freshness_s: float) -> ViabilityTerm:
    values = [r.value for r in inputs.s1.values() if fresh(r, now, freshness_s)]
    return ViabilityTerm(
        name="s1_performance",
        weight=WEIGHTS["s1_performance"],
        value=clip(sum(values) / len(values)) if values else None,
        detail=f"mean performance index of {len(values)} S1 unit(s)",
    )


def reading_term(name: str, reading: Reading | None, invert: bool, detail: str) -> ViabilityTerm:
    value = None if reading is None else clip(1 - reading.value if invert else reading.value)
    return ViabilityTerm(name=name, weight=WEIGHTS[name], value=value, detail=detail)


def viability(
    inputs: ViabilityInputs,
    *,
    pain: float,
    pleasure: float,
    signals: int,
    now: datetime,
    freshness_s: float,
) -> Viability:
    terms = [
        s1_term(inputs, now, freshness_s),
        ViabilityTerm(
            name="algedonic_balance",
            weight=WEIGHTS["algedonic_balance"],
            value=clip(0.5 + 0.5 * (pleasure - pain)) if signals else None,
            detail="0.5 + (pleasure - pain) / 2 over the decayed levels",
        ),
        reading_term(
            "s2_stability",
            fresh(inputs.oscillation, now, freshness_s),
            invert=True,
            detail="1 - S2 oscillation index",
        ),
        reading_term(
            "s3_headroom",
            fresh(inputs.headroom, now, freshness_s),
            invert=False,
            detail="S3 unallocated share of the budget",
        ),
        reading_term(
            "s4_readiness",
            fresh(inputs.readiness, now, freshness_s),
            invert=False,
            detail="S4 adaptation readiness",
        ),
    ]
    known = [t for t in terms if t.value is not None]
    weight = sum(t.weight for t in known)
    score = sum(t.weight * (t.value or 0.0) for t in known) / weight if known else None
    return Viability(
        score=None if score is None else round(score, 4),
        coverage=round(weight / sum(WEIGHTS.values()), 4),
        terms=terms,
    )
