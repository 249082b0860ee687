"""Variety: Shannon entropy over event types in a sliding window."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from vsm.intelligence.variety import (
    Event,
    EventWindow,
    entropy_bits,
    normalised_entropy,
    variety_report,
)


def test_entropy_of_k_equally_frequent_types_is_log2_k() -> None:
    counts = Counter({f"t{i}": 5 for i in range(8)})
    assert entropy_bits(counts) == pytest.approx(3.0)
    assert normalised_entropy(counts) == pytest.approx(1.0)


def test_one_type_has_no_variety() -> None:
    assert entropy_bits(Counter({"a": 10})) == 0.0
    assert normalised_entropy(Counter({"a": 10})) == 0.0
    assert entropy_bits(Counter()) == 0.0


def test_a_dominant_type_lowers_the_evenness() -> None:
    counts = Counter({"a": 97, "b": 1, "c": 1, "d": 1})
    assert 0 < normalised_entropy(counts) < 0.2
    expected = -(0.97 * math.log2(0.97) + 3 * 0.01 * math.log2(0.01))
    assert entropy_bits(counts) == pytest.approx(expected)


def test_the_window_forgets_old_events_and_counts_what_is_left() -> None:
    window = EventWindow(window_s=10)
    for i in range(4):
        window.add(Event(0.0, f"old{i}", "a"))
    for i in range(6):
        window.add(Event(15.0, f"new{i % 3}", f"src{i % 2}"))
    window.add_anomaly(1.0)
    window.add_anomaly(16.0)
    report = variety_report(window, now=20.0)
    assert report.events == 6
    assert report.distinct_types == 3
    assert report.distinct_sources == 2
    assert report.anomalies == 1
    assert report.entropy_bits == pytest.approx(math.log2(3), abs=1e-6)
    assert report.event_rate == pytest.approx(6 / 5)
    assert report.top_types == {"new0": 2, "new1": 2, "new2": 2}


def test_capacity_bounds_memory() -> None:
    window = EventWindow(window_s=60, capacity=5)
    for i in range(20):
        window.add(Event(float(i), "t", "s"))
    assert len(window.events) == 5
