"""Variety of the environment (Ashby): how many kinds of event S4 sees, and how evenly.

Events live in a sliding time window. Shannon entropy over their types is the variety in
bits; divided by log2(k) for k distinct types it says how evenly spread they are (1 = every
type equally often). Both are reported, because a stream with many types that one type
dominates is less variety than the same types evenly mixed.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

from vsm.contract.intelligence import VarietyReport

TOP_TYPES = 10


@dataclass(frozen=True)
class Event:
    at: float
    event_type: str
    source: str
    part: str = ""
    """The part of the work the event belongs to (its agent type), when known."""
    count: int = 1
    """How many events of the type this stands for (a report summarising a window's work)."""


@dataclass
class EventWindow:
    """The events of the last `window_s` seconds (at most `capacity`, oldest dropped first)."""

    window_s: float = 60.0
    capacity: int = 10_000
    events: deque[Event] = field(default_factory=deque)
    anomalies: deque[float] = field(default_factory=deque)

    def add(self, event: Event) -> None:
        self.events.append(event)
        while len(self.events) > self.capacity:
            self.events.popleft()

    def add_anomaly(self, at: float) -> None:
        self.anomalies.append(at)

    def expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self.events and self.events[0].at < horizon:
            self.events.popleft()
        while self.anomalies and self.anomalies[0] < horizon:
            self.anomalies.popleft()


def entropy_bits(counts: Counter[str]) -> float:
    """Shannon entropy H = -sum p log2 p of the distribution in `counts`."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return -sum((n / total) * math.log2(n / total) for n in counts.values() if n)


def normalised_entropy(counts: Counter[str]) -> float:
    """H / log2(k): 0 for one type (or none), 1 when k types are equally frequent."""
    k = sum(1 for n in counts.values() if n)
    return min(1.0, entropy_bits(counts) / math.log2(k)) if k > 1 else 0.0


def variety_report(window: EventWindow, now: float) -> VarietyReport:
    """The variety of what is in `window` at `now` (expiring what has left it)."""
    window.expire(now)
    types: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for e in window.events:
        types[e.event_type] += e.count
        sources[e.source] += e.count
    events = sum(types.values())
    span = window.window_s
    if window.events:
        # A young window (S4 just started) has seen less than window_s of time.
        span = min(window.window_s, max(1.0, now - window.events[0].at))
    return VarietyReport(
        window_s=window.window_s,
        events=events,
        distinct_types=len(types),
        distinct_sources=len(sources),
        entropy_bits=round(entropy_bits(types), 6),
        normalised_entropy=round(normalised_entropy(types), 6),
        event_rate=round(events / span, 6),
        anomalies=len(window.anomalies),
        top_types=dict(types.most_common(TOP_TYPES)),
        top_sources=dict(sources.most_common(TOP_TYPES)),
    )
