"""Viability: one documented formula over measured inputs only (see the README).

score = sum(w_i * v_i) / sum(w_i) over the terms i that are measured; coverage = the
measured terms' share of the total weight. A term that was never reported (or whose
reports are stale) is unknown: it is left out, never replaced by a made-up constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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


class Readings(dict[str, Reading]):
    """Readings by S1 unit, counting its changes (`version`): the mean over the fresh ones
    is kept until a reading changes or the oldest of them goes stale (`s1_term`), so that
    S5's clock costs what changed, not the units."""

    version = 0

    def __setitem__(self, key: str, value: Reading) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.version += 1

    def pop(self, key: str, *default: Any) -> Any:
        self.version += 1
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Reading]:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        super().clear()
        self.version += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self.version += 1

    def setdefault(self, key: str, default: Reading) -> Reading:
        self.version += 1
        return super().setdefault(key, default)


@dataclass(frozen=True)
class MeanS1:
    """`s1_term`'s mean as computed at `at`: valid for the same readings (`version`) and
    freshness, from `at` until `until` (when the oldest fresh reading goes stale)."""

    version: int
    freshness_s: float
    at: datetime
    until: datetime | None
    values: int
    mean: float | None


@dataclass
class ViabilityInputs:
    """What has been measured for one viable system."""

    s1: dict[str, Reading] = field(default_factory=Readings)
    """Beer's performance index (actuality/potentiality) per S1 unit."""
    failures: dict[str, Reading] = field(default_factory=dict)
    """Share of each S1 unit's commands that failed in its last window."""
    readiness: Reading | None = None
    oscillation: Reading | None = None
    headroom: Reading | None = None
    mean_s1: MeanS1 | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.s1, Readings):
            self.s1 = Readings(self.s1)


def clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def fresh(reading: Reading | None, now: datetime, freshness_s: float) -> Reading | None:
    if reading is None or (now - reading.at).total_seconds() > freshness_s:
        return None
    return reading


def mean_s1(inputs: ViabilityInputs, now: datetime, freshness_s: float) -> MeanS1:
    """The mean performance index over the fresh S1 readings: the last one computed while
    no reading changed and none went stale since, else computed again."""
    readings = inputs.s1
    version = readings.version if isinstance(readings, Readings) else -1
    kept = inputs.mean_s1
    if (
        kept is not None
        and version >= 0
        and kept.version == version
        and kept.freshness_s == freshness_s
        and kept.at <= now
        and (kept.until is None or now < kept.until)
    ):
        return kept
    found = [r for r in readings.values() if fresh(r, now, freshness_s)]
    oldest = min((r.at for r in found), default=None)
    inputs.mean_s1 = MeanS1(
        version=version,
        freshness_s=freshness_s,
        at=now,
        until=None if oldest is None else oldest + timedelta(seconds=freshness_s),
        values=len(found),
        mean=sum(r.value for r in found) / len(found) if found else None,
    )
    return inputs.mean_s1


def s1_term(inputs: ViabilityInputs, now: datetime, freshness_s: float) -> ViabilityTerm:
    mean = mean_s1(inputs, now, freshness_s)
    return ViabilityTerm(
        name="s1_performance",
        weight=WEIGHTS["s1_performance"],
        value=None if mean.mean is None else clip(mean.mean),
        detail=f"mean performance index of {mean.values} S1 unit(s)",
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
