"""Anomaly detection on a series: an EWMA z-score with warm-up and alert-once episodes.

A fixed threshold on a raw value knows nothing about what is normal for that series; the
EWMA keeps a running mean and variance, so "anomalous" means "far from this series' own
recent behaviour". An episode opens when |z| crosses `threshold` and closes when it falls
back under `threshold * reset_ratio`; one alert per episode, never one per sample.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DetectorParams:
    alpha: float = 0.1
    """Weight of the newest sample in the running mean and variance."""
    threshold: float = 4.0
    """|z| at which an anomaly episode opens."""
    reset_ratio: float = 0.5
    """The episode closes once |z| < threshold * reset_ratio (hysteresis, no flapping)."""
    warmup: int = 10
    """Samples needed before any verdict: no baseline, no anomaly."""
    min_stdev: float = 1e-6
    relative_min_stdev: float = 0.05
    """Floor of the standard deviation as a fraction of |mean|: a flat series is not
    infinitely sensitive to the first wobble."""
    window: int = 20
    """Recent samples kept as evidence."""


@dataclass
class SeriesState:
    """What one series has taught the detector so far."""

    mean: float = 0.0
    variance: float = 0.0
    samples: int = 0
    episode_since: float | None = None
    episode_z: float = 0.0
    recent: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class Anomaly:
    """The start of an episode, with the evidence that a reader can check by hand."""

    series: str
    value: float
    mean: float
    stdev: float
    z: float
    threshold: float
    alpha: float
    samples: int
    window: tuple[float, ...]
    at: float

    def evidence(self) -> dict[str, object]:
        return {
            "detector": "ewma_zscore",
            "value": self.value,
            "mean": round(self.mean, 6),
            "stdev": round(self.stdev, 6),
            "z": round(self.z, 3),
            "threshold": self.threshold,
            "alpha": self.alpha,
            "samples": self.samples,
            "window": list(self.window),
        }


def stdev_of(state: SeriesState, params: DetectorParams) -> float:
    floor = max(params.min_stdev, params.relative_min_stdev * abs(state.mean))
    return max(math.sqrt(max(state.variance, 0.0)), floor)


def observe(
    state: SeriesState, series: str, value: float, at: float, params: DetectorParams
) -> Anomaly | None:
    """Score `value` against the series' past, then learn from it; an `Anomaly` if one began."""
    anomaly: Anomaly | None = None
    if state.samples >= params.warmup:
        stdev = stdev_of(state, params)
        z = (value - state.mean) / stdev
        if abs(z) >= params.threshold and state.episode_since is None:
            state.episode_since, state.episode_z = at, z
            anomaly = Anomaly(
                series=series,
                value=value,
                mean=state.mean,
                stdev=stdev,
                z=z,
                threshold=params.threshold,
                alpha=params.alpha,
                samples=state.samples,
                window=(*state.recent, value),
                at=at,
            )
        elif abs(z) < params.threshold * params.reset_ratio:
            state.episode_since = None
    _learn(state, value, params)
    return anomaly


def _learn(state: SeriesState, value: float, params: DetectorParams) -> None:
    """Finch's incremental EWMA mean and variance; the first sample seeds the mean."""
    state.recent.append(value)
    while len(state.recent) > params.window:
        state.recent.popleft()
    state.samples += 1
    if state.samples == 1:
        state.mean, state.variance = value, 0.0
        return
    diff = value - state.mean
    increment = params.alpha * diff
    state.mean += increment
    state.variance = (1 - params.alpha) * (state.variance + diff * increment)


def severity(z: float, threshold: float) -> Literal["warning", "critical"]:
    """Twice the threshold is critical; anything else that opened an episode is a warning."""
    return "critical" if abs(z) >= 2 * threshold else "warning"
