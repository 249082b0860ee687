"""Quotas on what adaptation may do per hour, so a flapping signal cannot make S1 thrash.

Each kind of deed (`spawns`, `retirements`, `policies`: adaptation policy versions carried
out) has a limit per sliding hour, per viable system. `take(kind, n)` grants at most what is
left of the hour's quota and books it; the rest of the `n` is the caller's to refuse.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Deed = Literal["spawns", "retirements", "policies"]
HOUR_S = 3600.0


@dataclass
class AdaptationQuota:
    limits: dict[Deed, int]
    window_s: float = HOUR_S
    booked: dict[tuple[str, Deed], deque[float]] = field(default_factory=dict)

    def left(self, vsm_id: str, deed: Deed, now: float) -> int:
        times = self.booked.get((vsm_id, deed))
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return max(0, self.limits[deed] - (len(times) if times else 0))

    def take(self, vsm_id: str, deed: Deed, wanted: int, now: float) -> int:
        """Book up to `wanted` deeds within the hour's quota; how many were granted."""
        granted = min(wanted, self.left(vsm_id, deed, now))
        if granted:
            self.booked.setdefault((vsm_id, deed), deque()).extend([now] * granted)
        return granted

    def give_back(self, vsm_id: str, deed: Deed, count: int) -> None:
        """Unbook deeds that were granted but not done (the owner refused them)."""
        times = self.booked.get((vsm_id, deed))
        for _ in range(min(count, len(times) if times else 0)):
            assert times is not None
            times.pop()
