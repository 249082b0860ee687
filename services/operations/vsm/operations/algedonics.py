"""Algedonic feeling of one agent: error bursts hurt, sustained success pleases, once per episode.

Hysteresis: a pain episode starts when `pain_errors` errors fall within `pain_window_s`, and
ends only after `calm_s` without any error. While it lasts, the same episode is signalled
again at most once per `pain_window_s`, and only while errors still come at the opening
rate: a storm of failures is one signal per window (S5 keeps feeling it, so it cannot
mistake a unit that still fails for one that has recovered), and a throttled unit whose
errors have thinned out falls silent. Pleasure needs `pleasure_successes` successes within
`pleasure_window_s` and no error in that window; the first error ends the pleasure episode.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AlgedonicThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pain_errors: int = Field(default=5, ge=1, le=10_000)
    pain_window_s: float = Field(default=10.0, gt=0, le=3600)
    calm_s: float = Field(default=10.0, gt=0, le=3600)
    pleasure_successes: int = Field(default=100, ge=1, le=1_000_000)
    pleasure_window_s: float = Field(default=60.0, gt=0, le=3600)


@dataclass(frozen=True)
class Feeling:
    """A signal to send: the kind, how strongly, why, and the episode it opens."""

    kind: Literal["pain", "pleasure"]
    intensity: float
    reason: str
    episode: str
    context: dict[str, float]


@dataclass
class AlgedonicMonitor:
    agent_id: str
    thresholds: AlgedonicThresholds = field(default_factory=AlgedonicThresholds)
    errors: deque[float] = field(default_factory=deque)
    successes: deque[float] = field(default_factory=deque)
    in_pain: bool = False
    in_pleasure: bool = False
    episodes: int = 0
    last_error: float | None = None
    last_pain: float | None = None

    def record(self, ok: bool, now: float) -> Feeling | None:
        """Count one outcome at `now` (monotonic seconds); a feeling when an episode starts."""
        if ok:
            self.successes.append(now)
        else:
            self.errors.append(now)
            self.last_error = now
            self.in_pleasure = False
        self._prune(now)
        self.tick(now)
        burst = len(self.errors) >= self.thresholds.pain_errors
        if not ok and burst and not self.in_pain:
            self.in_pain = True
            self.last_pain = now
            return self._open("pain", "error_burst", len(self.errors) / self.thresholds.pain_errors)
        if not ok and burst and self._pain_due(now):
            self.last_pain = now
            return self._feeling(
                "pain", "error_burst", len(self.errors) / self.thresholds.pain_errors
            )
        if ok and self._pleased(now):
            self.in_pleasure = True
            return self._open(
                "pleasure", "sustained_success", 1.0 * len(self.successes) / self._pleasure_goal
            )
        return None

    def tick(self, now: float) -> None:
        """End a pain episode once the agent has been calm long enough."""
        calm = self.last_error is None or now - self.last_error >= self.thresholds.calm_s
        if self.in_pain and calm:
            self.in_pain = False

    def state(self) -> dict[str, object]:
        return {
            "in_pain": self.in_pain,
            "in_pleasure": self.in_pleasure,
            "recent_errors": len(self.errors),
            "recent_successes": len(self.successes),
            "episodes": self.episodes,
        }

    def _pain_due(self, now: float) -> bool:
        return self.last_pain is None or now - self.last_pain >= self.thresholds.pain_window_s

    @property
    def _pleasure_goal(self) -> int:
        return self.thresholds.pleasure_successes

    def _pleased(self, now: float) -> bool:
        if self.in_pain or self.in_pleasure or len(self.successes) < self._pleasure_goal:
            return False
        window_start = now - self.thresholds.pleasure_window_s
        return self.last_error is None or self.last_error < window_start

    def _prune(self, now: float) -> None:
        while self.errors and self.errors[0] < now - self.thresholds.pain_window_s:
            self.errors.popleft()
        while self.successes and self.successes[0] < now - self.thresholds.pleasure_window_s:
            self.successes.popleft()

    def _open(self, kind: Literal["pain", "pleasure"], reason: str, ratio: float) -> Feeling:
        self.episodes += 1
        return self._feeling(kind, reason, ratio)

    def _feeling(self, kind: Literal["pain", "pleasure"], reason: str, ratio: float) -> Feeling:
        return Feeling(
            kind=kind,
            intensity=round(min(1.0, 0.5 * ratio), 3),
            reason=reason,
            episode=f"{self.agent_id}:{kind}:{self.episodes}",
            context={
                "errors_in_window": float(len(self.errors)),
                "successes_in_window": float(len(self.successes)),
            },
        )
