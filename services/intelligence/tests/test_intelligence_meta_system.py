"""check_meta_system_need: a scored recommendation from measured factors."""

from __future__ import annotations

from vsm.intelligence.meta_system import NeedParams, meta_system_need
from vsm.intelligence.variety import Event, EventWindow, variety_report

PARAMS = NeedParams()


def window_of(types: int, sources: int, events: int, seconds: float = 60.0) -> EventWindow:
    window = EventWindow(window_s=60)
    for i in range(events):
        window.add(Event(i * seconds / events, f"type{i % types}", f"source{i % sources}"))
    return window


def test_a_calm_environment_needs_no_meta_system() -> None:
    need = meta_system_need(variety_report(window_of(2, 2, 60), now=60.0), PARAMS)
    assert not need.recommended
    assert need.score < need.threshold
    assert set(need.factors) == {"variety", "rate", "sources", "anomalies"}
    assert need.reasons[-1].startswith("score")


def test_high_variety_from_many_sources_recommends_a_meta_system() -> None:
    need = meta_system_need(variety_report(window_of(40, 15, 600), now=60.0), PARAMS)
    assert need.recommended
    assert need.score >= PARAMS.threshold
    assert need.factors["variety"] == 1.0
    assert need.factors["sources"] == 1.0
    assert need.confidence == 1.0
    assert "recommend a meta-system" in need.reasons[-1]
    assert need.variety.distinct_types == 40


def test_too_little_evidence_recommends_nothing_however_varied() -> None:
    need = meta_system_need(variety_report(window_of(10, 10, 10, 1.0), now=1.0), PARAMS)
    assert not need.recommended
    assert need.confidence < 0.5
    assert "too little evidence" in need.reasons[-1]


def test_the_score_is_the_weighted_sum_of_the_factors() -> None:
    need = meta_system_need(variety_report(window_of(8, 3, 120), now=60.0), PARAMS)
    expected = sum(need.weights[n] * need.factors[n] for n in need.factors)
    assert abs(need.score - expected / sum(need.weights.values())) < 1e-3
