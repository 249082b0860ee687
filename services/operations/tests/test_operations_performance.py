"""Beer's indices from measured outcomes: actuality, capability, potentiality and ratios."""

import pytest

from vsm.operations.performance import PerformanceMeter


def test_no_commands_yet_means_no_measured_capability() -> None:
    report = PerformanceMeter(window_s=10).report("a", "worker", 2, 8, now=100.0)
    assert (report.actuality, report.capability, report.potentiality) == (0, 0, 0)
    assert report.productivity is None
    assert report.latency is None


def test_indices_follow_the_window() -> None:
    meter = PerformanceMeter(window_s=10)
    for i in range(20):
        meter.record(ok=i % 4 != 0, duration_s=0.5, now=95.0 + i * 0.1)
    report = meter.report("a", "worker", allocation=2, max_allocation=8, now=100.0)
    assert report.actuality == pytest.approx(15 / 10)
    assert report.capability == pytest.approx(2 / 0.5)
    assert report.potentiality == pytest.approx(8 / 0.5)
    assert report.productivity == pytest.approx(1.5 / 4)
    assert report.latency == pytest.approx(0.25)
    assert report.performance == pytest.approx(1.5 / 16)
    assert (report.succeeded, report.failed) == (15, 5)


def test_an_idle_window_keeps_the_last_service_time() -> None:
    meter = PerformanceMeter(window_s=10)
    meter.record(ok=True, duration_s=0.1, now=0.0)
    meter.report("a", "worker", 1, 4, now=1.0)
    later = meter.report("a", "worker", 1, 4, now=100.0)
    assert later.actuality == 0
    assert later.capability == pytest.approx(10)
    assert later.productivity == 0
