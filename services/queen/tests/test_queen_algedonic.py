"""Algedonic processing as pure functions: decay, hysteresis, de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsm.contract.algedonic import AlgedonicSignal
from vsm.queen.algedonic import (
    MAX_EPISODE_KEYS,
    Episode,
    Feeling,
    Thresholds,
    decayed,
    feel,
    reopen,
    subsided,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
LIMITS = Thresholds(half_life_s=10.0, intervene_at=0.7, resolve_below=0.3, window=5)


def pain(intensity: float = 0.6, **fields: object) -> AlgedonicSignal:
    return AlgedonicSignal(
        kind="pain", intensity=intensity, origin="operations/w1", reason="error_burst", **fields
    )


def pleasure(intensity: float = 0.5) -> AlgedonicSignal:
    return AlgedonicSignal(kind="pleasure", intensity=intensity, origin="x", reason="thanks")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_level_halves_every_half_life() -> None:
    assert decayed(0.8, 10.0, 10.0) == pytest.approx(0.4)
    assert decayed(0.8, 20.0, 10.0) == pytest.approx(0.2)
    assert decayed(0.8, -5.0, 10.0) == 0.8


def test_pain_crossing_the_threshold_opens_one_episode_for_the_whole_burst() -> None:
    feeling = Feeling("root", window=5)
    opened = [feel(feeling, pain(), f"s{i}", at(i * 0.1), LIMITS) for i in range(8)]

    episodes = [e for e in opened if e is not None]
    assert len(episodes) == 1
    assert episodes[0].trigger == "pain_threshold"
    assert episodes[0].causes[:2] == ["s0", "s1"]  # the signals before the crossing count too
    assert feeling.episode is episodes[0]
    assert "s7" in episodes[0].causes


def test_most_recent_signals_being_pain_opens_an_episode_below_the_threshold() -> None:
    limits = Thresholds(half_life_s=1000.0, intervene_at=0.95, resolve_below=0.3, window=3)
    feeling = Feeling("root", window=3)
    results = [feel(feeling, pain(0.15), f"s{i}", at(i), limits) for i in range(3)]

    assert results[:2] == [None, None]
    assert results[2] is not None
    assert results[2].trigger == "pain_majority"


def test_weak_pain_alone_never_intervenes() -> None:
    limits = Thresholds(half_life_s=1.0, intervene_at=0.7, resolve_below=0.3, window=3)
    feeling = Feeling("root", window=3)
    assert all(feel(feeling, pain(0.1), f"s{i}", at(i * 5), limits) is None for i in range(10))


def test_hysteresis_keeps_the_episode_open_until_pain_falls_below_the_lower_level() -> None:
    feeling = Feeling("root", window=5)
    for i in range(3):
        feel(feeling, pain(0.7), f"s{i}", at(0), LIMITS)
    assert feeling.episode is not None
    assert feeling.pain > 0.9

    assert subsided(feeling, at(10), LIMITS) is None  # ~0.49: below the threshold, still open
    assert feeling.episode is not None
    closed = subsided(feeling, at(20), LIMITS)  # ~0.24: below 0.3
    assert closed is not None
    assert feeling.episode is None


def test_a_redelivered_signal_changes_nothing() -> None:
    feeling = Feeling("root", window=5)
    feel(feeling, pain(0.5), "same", at(0), LIMITS)
    level = feeling.pain
    assert feel(feeling, pain(0.5), "same", at(0), LIMITS) is None
    assert feeling.pain == level
    assert feeling.signals == 1


def test_pleasure_raises_pleasure_not_pain() -> None:
    feeling = Feeling("root", window=5)
    feel(feeling, pleasure(0.5), "p", at(0), LIMITS)
    assert (feeling.pain, feeling.pleasure) == (0.0, 0.5)


def test_an_opening_withdrawn_after_a_failure_opens_again_on_redelivery() -> None:
    feeling = Feeling("root", window=5)
    episode = feel(feeling, pain(0.9), "s1", at(0), LIMITS)
    assert episode is not None
    reopen(feeling, episode, "s1")
    assert feeling.episode is None
    assert feel(feeling, pain(0.9), "s1", at(0), LIMITS) is not None


def test_an_episode_keeps_a_bounded_number_of_reasons_origins_and_sender_episodes() -> None:
    episode = Episode(trigger="pain_threshold", opened_at=datetime.now(UTC), pain_at_open=0.8)
    for index in range(5_000):
        signal = AlgedonicSignal(
            kind="pain",
            intensity=0.5,
            origin=f"operations/made-up-{index}",
            reason=f"made_up_{index}",
            episode=f"ep-{index}",
        )
        episode.join(signal, f"id-{index}")
    assert len(episode.reasons) <= MAX_EPISODE_KEYS + 1
    assert len(episode.origins) <= MAX_EPISODE_KEYS + 1
    assert len(episode.sender_episodes) <= MAX_EPISODE_KEYS
    assert episode.reasons["other"] == 5_000 - MAX_EPISODE_KEYS
