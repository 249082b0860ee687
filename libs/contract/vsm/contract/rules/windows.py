"""A sliding window of one aggregate for one group, in bounded memory.

The window is cut into `buckets` equal buckets by absolute time; each keeps the count, sum,
least and greatest value and its first and last sample, so counts, rates, sums, means,
extremes and changes cost one bucket per step of the window whatever the event rate. The
window's edge moves a bucket at a time (1/`buckets` of its length). A percentile needs the
values themselves: the most recent `max_samples` of the window are kept for it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from vsm.contract.rules.syntax import Aggregate

__all__ = ["Bucket", "SlidingWindow", "percentile", "summary"]


@dataclass
class Bucket:
    index: int
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    first: tuple[float, float] = (0.0, 0.0)
    last: tuple[float, float] = (0.0, 0.0)

    def add(self, at: float, value: float) -> None:
        if self.count == 0:
            self.first = (at, value)
        self.count += 1
        self.total += value
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.last = (at, value)


@dataclass
class SlidingWindow:
    window_s: float
    buckets: int = 60
    max_samples: int = 0
    """Values kept for a percentile (0: none are)."""
    cells: deque[Bucket] = field(default_factory=deque)
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    @property
    def width(self) -> float:
        return self.window_s / self.buckets

    def add(self, at: float, value: float) -> None:
        index = math.floor(at / self.width)
        if not self.cells or self.cells[-1].index < index:
            self.cells.append(Bucket(index))
        self.cells[-1].add(at, value)  # a late sample counts in the newest bucket
        if self.max_samples:
            self.samples.append((at, value))
            while len(self.samples) > self.max_samples:
                self.samples.popleft()
        self.expire(at)

    def expire(self, now: float) -> None:
        oldest = math.floor((now - self.window_s) / self.width)
        while self.cells and self.cells[0].index < oldest:
            self.cells.popleft()
        while self.samples and self.samples[0][0] < now - self.window_s:
            self.samples.popleft()

    def value(self, fn: Aggregate, now: float, quantile: float = 0.0) -> float | None:
        """The aggregate over the window at `now`; None when the window holds no value."""
        self.expire(now)
        count = sum(c.count for c in self.cells)
        if fn == "count":
            return float(count)
        if fn == "rate":
            return count / self.window_s
        if count == 0:
            return None
        if fn == "percentile":
            return percentile(sorted(v for _, v in self.samples), quantile)
        return summary(fn, [c for c in self.cells if c.count], count)


def summary(fn: Aggregate, cells: list[Bucket], count: int) -> float | None:
    if fn == "sum":
        return sum(c.total for c in cells)
    if fn == "avg":
        return sum(c.total for c in cells) / count
    if fn == "min":
        return min(c.low for c in cells)
    if fn == "max":
        return max(c.high for c in cells)
    (first_at, first), (last_at, last) = cells[0].first, cells[-1].last
    if fn == "delta":
        return last - first
    return (last - first) / (last_at - first_at) if last_at > first_at else None  # deriv


def percentile(values: list[float], quantile: float) -> float | None:
    """Linear interpolation between the closest ranks of the sorted `values`."""
    if not values:
        return None
    position = quantile * (len(values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(values) - 1)
    return values[below] + (values[above] - values[below]) * (position - below)
