"""The EWMA z-score detector: warm-up, one alert per episode, evidence a person can check."""

from __future__ import annotations

from vsm.intelligence.anomaly import DetectorParams, SeriesState, observe, severity

PARAMS = DetectorParams(alpha=0.1, threshold=4.0, warmup=10)
NORMAL = [10.0, 10.4, 9.7, 10.2, 9.9, 10.3, 9.6, 10.1, 10.0, 9.8, 10.2, 9.9, 10.1, 10.3, 9.7]


def feed(state: SeriesState, values: list[float], start: float = 0.0) -> list[object]:
    found = []
    for i, value in enumerate(values):
        anomaly = observe(state, "s", value, start + i, PARAMS)
        if anomaly is not None:
            found.append(anomaly)
    return found


def test_normal_noise_raises_nothing() -> None:
    assert feed(SeriesState(), NORMAL * 3) == []


def test_no_verdict_during_warm_up_even_for_wild_values() -> None:
    assert feed(SeriesState(), [1.0, 1000.0, 1.0, 500.0, 2.0, 3.0, 900.0, 1.0, 1.0]) == []


def test_a_spike_raises_one_anomaly_with_its_evidence() -> None:
    state = SeriesState()
    feed(state, NORMAL)
    anomaly = observe(state, "s", 60.0, 100.0, PARAMS)
    assert anomaly is not None
    evidence = anomaly.evidence()
    assert evidence["detector"] == "ewma_zscore"
    assert evidence["value"] == 60.0
    assert 9.5 < evidence["mean"] < 10.5
    assert evidence["z"] >= PARAMS.threshold
    assert evidence["threshold"] == PARAMS.threshold
    assert evidence["samples"] == len(NORMAL)
    assert evidence["window"][-1] == 60.0
    assert len(evidence["window"]) <= PARAMS.window + 1
    assert abs(evidence["z"] - (60.0 - evidence["mean"]) / evidence["stdev"]) < 0.01


def test_an_episode_alerts_once_then_a_new_episode_alerts_again() -> None:
    state = SeriesState()
    feed(state, NORMAL)
    first = feed(state, [60.0, 65.0, 70.0], start=100)
    assert len(first) == 1
    feed(state, NORMAL * 4, start=200)  # back to normal: the episode closes
    assert state.episode_since is None
    again = feed(state, [80.0], start=400)
    assert len(again) == 1


def test_a_drop_is_an_anomaly_too() -> None:
    state = SeriesState()
    feed(state, NORMAL)
    anomaly = observe(state, "s", 0.0, 50.0, PARAMS)
    assert anomaly is not None
    assert anomaly.z < 0


def test_a_flat_series_is_not_infinitely_sensitive() -> None:
    state = SeriesState()
    feed(state, [10.0] * 12)
    assert observe(state, "s", 10.5, 20.0, PARAMS) is None  # within the 5% stdev floor
    assert observe(state, "s", 20.0, 21.0, PARAMS) is not None


def test_severity_is_critical_at_twice_the_threshold() -> None:
    assert severity(5.0, 4.0) == "warning"
    assert severity(-8.0, 4.0) == "critical"
