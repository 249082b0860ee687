"""Beer's indices from measured outcomes: actuality, capability, potentiality and ratios."""

import pytest

from vsm.operations.performance import PerformanceMeter, report_due


def test_no_commands_yet_means_no_measured_capability() -> None:
    report = PerformanceMeter(window_s=10).report("a", "worker", 2, 8, now=100.0)
    assert (report.actuality, report.capability, report.potentiality) == (0, 0, 0)
    assert report.productivity is None
    assert report.latency is None


def test_an_overloaded_agent_is_judged_against_its_slots() -> None:
    meter = PerformanceMeter(window_s=10)
    for i in range(400):
        meter.arrived(95.0 + i * 0.01)
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


def test_a_healthy_lightly_loaded_agent_performs_fully_and_a_failing_one_not_at_all() -> None:
    healthy, failing = PerformanceMeter(window_s=10), PerformanceMeter(window_s=10)
    for i in range(10):
        for meter, ok in ((healthy, True), (failing, False)):
            meter.arrived(91.0 + i)
            meter.record(ok=ok, duration_s=0.01, now=91.0 + i)
    assert healthy.report("a", "api", 4, 4, now=100.0).performance == pytest.approx(1.0)
    assert failing.report("b", "api", 4, 4, now=100.0).performance == 0


def test_a_rate_limit_shows_as_latency() -> None:
    meter = PerformanceMeter(window_s=10)
    for i in range(100):
        meter.arrived(90.5 + i * 0.095)
    for i in range(20):
        meter.record(ok=True, duration_s=0.01, now=90.5 + i * 0.45)
    report = meter.report("a", "api", 4, 4, now=100.0, max_rate_per_s=2.0)
    assert report.capability == pytest.approx(2.0)
    assert report.potentiality == pytest.approx(10.0)
    assert report.latency == pytest.approx(0.2)
    assert report.productivity == pytest.approx(1.0)


def test_an_idle_window_has_nothing_to_judge() -> None:
    meter = PerformanceMeter(window_s=10)
    meter.arrived(0.0)
    meter.record(ok=True, duration_s=0.1, now=0.0)
    meter.report("a", "worker", 1, 4, now=1.0)
    later = meter.report("a", "worker", 1, 4, now=100.0)
    assert later.actuality == 0
    assert later.capability == 0
    assert later.performance is None


def test_a_report_goes_upward_when_it_says_something_new() -> None:
    meter = PerformanceMeter(window_s=10)
    idle = meter.report("a", "worker", 1, 4, now=100.0)
    assert report_due(idle, None, tick=1, every=6)  # the first one always goes
    meter.arrived(101.0)
    meter.record(ok=True, duration_s=0.1, now=101.0)
    busy = meter.report("a", "worker", 1, 4, now=102.0)
    assert report_due(busy, idle, tick=2, every=6)
    later = meter.report("a", "worker", 1, 4, now=120.0)  # the work has left the window
    assert report_due(later, busy, tick=3, every=6)


def test_an_unchanged_report_goes_once_per_refresh_at_each_agents_own_phase() -> None:
    def due_ticks(agent_id: str) -> list[int]:
        report = PerformanceMeter(window_s=10).report(agent_id, "worker", 1, 4, now=100.0)
        return [tick for tick in range(1, 19) if report_due(report, report, tick, every=6)]

    phases = set()
    for agent_id in (f"worker-{n}" for n in range(12)):
        ticks = due_ticks(agent_id)
        assert len(ticks) == 3, ticks  # once in every 6 ticks
        assert ticks[1] - ticks[0] == ticks[2] - ticks[1] == 6
        phases.add(ticks[0] % 6)
    assert len(phases) > 1  # quiet agents do not all refresh in the same tick


def test_the_report_carries_the_mix_of_work_done_in_its_window() -> None:
    meter = PerformanceMeter(window_s=10)
    meter.record(ok=True, duration_s=0.1, now=85.0, command="analyze")  # left the window
    for i, command in enumerate(["analyze", "transform", "analyze", "process_data"]):
        meter.record(ok=True, duration_s=0.1, now=95.0 + i, command=command)
    meter.record(ok=False, duration_s=0.1, now=99.5, command="transform")
    report = meter.report("a", "worker", allocation=2, max_allocation=8, now=100.0)
    assert report.work == {
        "analyze.ok": 2,
        "transform.ok": 1,
        "process_data.ok": 1,
        "transform.error": 1,
    }
