"""Anti-oscillation: detect flapping S1 units, damp them, and measure how calm a system is.

A subject (an S1 agent) is watched on two signals: its allocation (slots or rate up = +1,
down = -1) and its algedonic state (pleasure = +1, pain = -1); the scale of an agent type
(subject `scale:<agent_type>`) on a third, adaptation's decisions (spawned = +1, retired =
-1), so S3 stops scaling a type whose scale flaps. A reversal is a change of
direction; `max_reversals` reversals of one signal within `window_s` is flapping. A flapping
subject is damped once, for `cooldown_s` (S3 changes nothing for it meanwhile); while that
cool-down lasts it is not damped again (hysteresis), so damping cannot itself oscillate.

Oscillation index of a viable system = flapping / watched, where watched = its running
agents plus any subject observed there within the window, and flapping = the subjects with
`max_reversals` reversals of some signal within the window. 0 = calm, 1 = every watched
subject flapping; S5's `s2_stability` is 1 - index.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from vsm.contract.operations import AGENT_ID_PATTERN

Signal = Literal["allocation", "algedonic", "scale"]


@dataclass
class Trend:
    direction: int = 0
    reversals: deque[float] = field(default_factory=deque)


@dataclass
class Subject:
    vsm_id: str
    last_seen: float
    trends: dict[str, Trend] = field(default_factory=dict)
    damped_until: float | None = None


@dataclass(frozen=True)
class Flap:
    """A subject found flapping, and damped until `until`."""

    subject: str
    signal: Signal
    reversals: int
    until: float


class Detector:
    def __init__(self, window_s: float, max_reversals: int, cooldown_s: float) -> None:
        self.window_s = window_s
        self.max_reversals = max_reversals
        self.cooldown_s = cooldown_s
        self.subjects: dict[str, Subject] = {}

    def observe(
        self, subject: str, vsm_id: str, signal: Signal, direction: int, now: float
    ) -> Flap | None:
        """Record one move; a `Flap` when it tips the subject into flapping (and damping)."""
        if direction == 0:
            return None
        watched = self.subjects.setdefault(subject, Subject(vsm_id, now))
        watched.vsm_id, watched.last_seen = vsm_id, now
        trend = watched.trends.setdefault(signal, Trend())
        if trend.direction and direction != trend.direction:
            trend.reversals.append(now)
        trend.direction = direction
        reversals = self._reversals(trend, now)
        if reversals < self.max_reversals or self.damped(subject, now):
            return None
        watched.damped_until = now + self.cooldown_s
        return Flap(subject, signal, reversals, watched.damped_until)

    def _reversals(self, trend: Trend, now: float) -> int:
        while trend.reversals and now - trend.reversals[0] > self.window_s:
            trend.reversals.popleft()
        return len(trend.reversals)

    def damped(self, subject: str, now: float) -> bool:
        watched = self.subjects.get(subject)
        return watched is not None and (watched.damped_until or 0.0) > now

    def flapping(self, vsm_id: str, now: float) -> list[str]:
        return sorted(
            name
            for name, watched in self.subjects.items()
            if watched.vsm_id == vsm_id
            and any(self._reversals(t, now) >= self.max_reversals for t in watched.trends.values())
        )

    def damping(self, vsm_id: str, now: float) -> dict[str, float]:
        """Subject -> end of its cool-down, for the subjects of `vsm_id` damped now."""
        return {
            name: watched.damped_until
            for name, watched in self.subjects.items()
            if watched.vsm_id == vsm_id and watched.damped_until and watched.damped_until > now
        }

    def index(self, vsm_id: str, running: Iterable[str], now: float) -> float:
        observed = {
            name
            for name, watched in self.subjects.items()
            if watched.vsm_id == vsm_id and now - watched.last_seen <= self.window_s
        }
        watched = observed | set(running)
        flapping = self.flapping(vsm_id, now)
        return round(len(flapping) / len(watched), 4) if watched else 0.0

    def systems(self) -> set[str]:
        return {watched.vsm_id for watched in self.subjects.values()}

    def forget_calm(self, now: float) -> None:
        """Drop subjects unseen for a window and not damped: they cannot be flapping."""
        for name, watched in list(self.subjects.items()):
            if now - watched.last_seen > self.window_s and not self.damped(name, now):
                del self.subjects[name]


def algedonic_subject(origin: str, context: dict[str, Any]) -> str | None:
    """The agent an algedonic signal is about: `operations/<agent_id>`, or `context.agent_id`
    (None when it names no valid agent id, e.g. a person's report)."""
    head, _, named = origin.partition("/")
    subject: Any = named if head == "operations" else context.get("agent_id")
    return subject if isinstance(subject, str) and re.fullmatch(AGENT_ID_PATTERN, subject) else None
