"""Descriptive statistics and a plain trend/pattern verdict over a series of numbers."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

TREND_CORRELATION = 0.5
"""|Pearson r| of value against index below this counts as stable (noise, not a trend)."""


def describe(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "trend": trend(values),
        "pattern": pattern(values),
    }


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of the values against their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = statistics.fmean(values)
    numerator = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    denominator = sum((i - mean_x) ** 2 for i in range(n))
    return numerator / denominator


def trend(values: Sequence[float]) -> str:
    n = len(values)
    spread_y = statistics.pstdev(values)
    if n < 3 or spread_y == 0:
        return "stable"
    spread_x = statistics.pstdev(range(n))
    correlation = slope(values) * spread_x / spread_y
    if abs(correlation) < TREND_CORRELATION:
        return "stable"
    return "increasing" if correlation > 0 else "decreasing"


def pattern(values: Sequence[float]) -> str:
    steps = [b - a for a, b in itertools.pairwise(values)]
    if not steps or all(s == 0 for s in steps):
        return "constant"
    if all(s >= 0 for s in steps):
        return "monotonic_increasing"
    if all(s <= 0 for s in steps):
        return "monotonic_decreasing"
    signs = [s > 0 for s in steps if s != 0]
    if len(signs) > 2 and all(a != b for a, b in itertools.pairwise(signs)):
        return "alternating"
    return "irregular"
