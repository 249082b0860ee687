"""Algedonic processing: pain and pleasure levels per viable system, decaying over time.

A level is raised by each signal (`level + intensity * (1 - level)`, so it stays within
0..1) and halves every `half_life_s`. An episode opens when pain crosses the threshold, or
when most of the last `window` signals were pain and pain is above the resolve level; it
closes only when pain falls below the lower, resolve level (hysteresis). One episode is one
intervention. Pure functions over plain data: the clock is always passed in.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

from vsm.contract.algedonic import AlgedonicSignal

MAX_CAUSES = 20
MAX_SEEN = 1024


@dataclass(frozen=True)
class Thresholds:
    half_life_s: float = 60.0
    intervene_at: float = 0.7
    resolve_below: float = 0.3
    window: int = 5


MAX_EPISODE_KEYS = 64
"""Distinct reasons, origins and senders' episodes an episode keeps (signals choose them):
later reasons and origins are counted as `other`, later senders' episodes not kept."""


def bounded_key(counts: Counter[str], key: str) -> str:
    return key if key in counts or len(counts) < MAX_EPISODE_KEYS else "other"


@dataclass
class Episode:
    """One stretch of trouble: from the signal that opened it until pain subsides."""

    trigger: str
    opened_at: datetime
    pain_at_open: float
    causes: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    origins: Counter[str] = field(default_factory=Counter)
    sender_episodes: set[str] = field(default_factory=set)

    def join(self, signal: AlgedonicSignal, signal_id: str) -> None:
        if len(self.causes) < MAX_CAUSES:
            self.causes.append(signal_id)
        if signal.kind == "pain":
            self.reasons[bounded_key(self.reasons, signal.reason)] += 1
            self.origins[bounded_key(self.origins, signal.origin)] += 1
        if signal.episode and len(self.sender_episodes) < MAX_EPISODE_KEYS:
            self.sender_episodes.add(signal.episode)


@dataclass
class Feeling:
    """What one viable system feels, as of `at`."""

    vsm_id: str
    window: int
    pain: float = 0.0
    pleasure: float = 0.0
    at: datetime | None = None
    signals: int = 0
    recent: deque[str] = field(default_factory=deque)
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_SEEN))
    episode: Episode | None = None
    pending: list[str] = field(default_factory=list)
    """Signal ids since the last episode, so an opened episode names its whole cause."""


def decayed(level: float, seconds: float, half_life_s: float) -> float:
    """`level` after `seconds` of exponential decay with the given half-life."""
    if seconds <= 0:
        return level
    return float(level * 0.5 ** (seconds / half_life_s))


def settle(feeling: Feeling, now: datetime, half_life_s: float) -> None:
    """Bring the levels forward to `now` (never backward: a late clock changes nothing)."""
    if feeling.at is not None:
        seconds = (now - feeling.at).total_seconds()
        feeling.pain = decayed(feeling.pain, seconds, half_life_s)
        feeling.pleasure = decayed(feeling.pleasure, seconds, half_life_s)
        if seconds < 0:
            return
    feeling.at = now


def raised(level: float, intensity: float) -> float:
    return level + intensity * (1.0 - level)


def mostly_pain(recent: deque[str], window: int) -> bool:
    return len(recent) >= window and sum(k == "pain" for k in recent) * 2 > window


def feel(
    feeling: Feeling,
    signal: AlgedonicSignal,
    signal_id: str,
    now: datetime,
    limits: Thresholds,
) -> Episode | None:
    """Take in one signal; the episode it opens, if it opens one (else None).

    A signal id already seen (a redelivery) changes nothing.
    """
    if signal_id in feeling.seen:
        return None
    feeling.seen.append(signal_id)
    settle(feeling, now, limits.half_life_s)
    feeling.signals += 1
    feeling.recent.append(signal.kind)
    while len(feeling.recent) > limits.window:
        feeling.recent.popleft()
    if signal.kind == "pain":
        feeling.pain = raised(feeling.pain, signal.intensity)
    else:
        feeling.pleasure = raised(feeling.pleasure, signal.intensity)
    if feeling.episode is not None:
        feeling.episode.join(signal, signal_id)
        return None
    feeling.pending = [*feeling.pending[-(MAX_CAUSES - 1) :], signal_id]
    trigger = opening_trigger(feeling, limits)
    if trigger is None:
        return None
    episode = Episode(trigger=trigger, opened_at=now, pain_at_open=feeling.pain)
    for cause in feeling.pending[:-1]:
        episode.causes.append(cause)
    episode.join(signal, signal_id)
    feeling.pending = []
    feeling.episode = episode
    return episode


def opening_trigger(feeling: Feeling, limits: Thresholds) -> str | None:
    if feeling.pain >= limits.intervene_at:
        return "pain_threshold"
    if mostly_pain(feeling.recent, limits.window) and feeling.pain >= limits.resolve_below:
        return "pain_majority"
    return None


def subsided(feeling: Feeling, now: datetime, limits: Thresholds) -> Episode | None:
    """Close the open episode if pain has fallen below the resolve level; the closed one."""
    settle(feeling, now, limits.half_life_s)
    episode = feeling.episode
    if episode is None or feeling.pain >= limits.resolve_below:
        return None
    feeling.episode = None
    feeling.recent.clear()
    return episode


def reopen(feeling: Feeling, episode: Episode, signal_id: str) -> None:
    """Undo an opening whose intervention could not be published, so a redelivery retries."""
    if feeling.episode is episode:
        feeling.episode = None
        feeling.pending = [c for c in episode.causes if c != signal_id]
        if signal_id in feeling.seen:
            feeling.seen.remove(signal_id)
