"""Pain per episode, not per error; pleasure for sustained success; hysteresis between."""

from vsm.operations.algedonics import AlgedonicMonitor, AlgedonicThresholds


def feelings(monitor: AlgedonicMonitor, outcomes: list[tuple[bool, float]]) -> list[str]:
    felt = [monitor.record(ok, at) for ok, at in outcomes]
    return [f.kind for f in felt if f is not None]


def test_five_errors_in_ten_seconds_are_one_pain_signal_and_a_storm_adds_none() -> None:
    monitor = AlgedonicMonitor("a1")
    assert feelings(monitor, [(False, t * 1.0) for t in range(4)]) == []
    assert feelings(monitor, [(False, 4.0)]) == ["pain"]
    assert feelings(monitor, [(False, 4.0 + t / 100) for t in range(1000)]) == []


def test_a_storm_that_goes_on_is_felt_again_once_per_window_in_the_same_episode() -> None:
    monitor = AlgedonicMonitor("a1")
    storm = [monitor.record(False, t / 10) for t in range(300)]  # 10 errors/s for 30 s
    felt = [f for f in storm if f is not None]
    assert [f.kind for f in felt] == ["pain", "pain", "pain"]
    assert {f.episode for f in felt} == {"a1:pain:1"}


def test_errors_thinned_below_the_opening_rate_are_not_felt_again() -> None:
    monitor = AlgedonicMonitor("a1")
    assert feelings(monitor, [(False, t * 1.0) for t in range(5)]) == ["pain"]
    assert feelings(monitor, [(False, 6.0 + t * 3.0) for t in range(10)]) == []


def test_errors_spread_wider_than_the_window_raise_nothing() -> None:
    monitor = AlgedonicMonitor("a1")
    assert feelings(monitor, [(False, t * 3.0) for t in range(10)]) == []


def test_a_new_episode_needs_calm_first() -> None:
    monitor = AlgedonicMonitor("a1", AlgedonicThresholds(pain_errors=2, calm_s=5))
    assert feelings(monitor, [(False, 0.0), (False, 1.0)]) == ["pain"]
    assert feelings(monitor, [(True, 3.0), (False, 4.0), (False, 4.5)]) == []
    monitor.tick(10.0)
    assert not monitor.in_pain
    signal = monitor.record(False, 11.0)
    assert signal is not None
    assert signal.episode == "a1:pain:2"


def test_sustained_success_pleases_once_and_an_error_ends_it() -> None:
    monitor = AlgedonicMonitor("a1", AlgedonicThresholds(pleasure_successes=3))
    assert feelings(monitor, [(True, 0.0), (True, 1.0), (True, 2.0), (True, 3.0)]) == ["pleasure"]
    monitor.record(False, 4.0)
    assert not monitor.in_pleasure
    # the error is still inside the pleasure window, so no pleasure yet
    assert feelings(monitor, [(True, 5.0 + t) for t in range(5)]) == []
    assert feelings(monitor, [(True, 70.0), (True, 71.0), (True, 72.0)]) == ["pleasure"]


def test_intensity_stays_within_bounds() -> None:
    monitor = AlgedonicMonitor("a1", AlgedonicThresholds(pain_errors=1))
    signal = monitor.record(False, 0.0)
    assert signal is not None
    assert 0.0 < signal.intensity <= 1.0
