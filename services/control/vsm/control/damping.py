"""S2's damping, obeyed: while an agent cools down, policy does not move its allocation.

Only the latest desired state is kept while the cool-down lasts; it is applied once, when
the cool-down ends (hysteresis: a flapping policy costs the agent one change, not many).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vsm.control.policies import Desired


@dataclass(frozen=True)
class Held:
    desired: Desired
    policy: str
    cause: Any


@dataclass
class Damper:
    until: dict[str, datetime] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)

    def damp(self, subject: str, until: datetime) -> None:
        known = self.until.get(subject)
        self.until[subject] = until if known is None else max(known, until)

    def active(self, now: datetime) -> dict[str, datetime]:
        return {subject: until for subject, until in self.until.items() if until > now}

    def hold(self, subject: str, held: Held) -> None:
        """Remember what policy wants for a damped subject; a later wish replaces it."""
        self.held[subject] = held

    def expire(self, now: datetime) -> list[Held]:
        """End the cool-downs that are over; what was held for them, to apply now."""
        over = [subject for subject, until in self.until.items() if until <= now]
        released = []
        for subject in over:
            del self.until[subject]
            held = self.held.pop(subject, None)
            if held is not None:
                released.append(held)
        return released

    def forget(self, subject: str) -> None:
        self.until.pop(subject, None)
        self.held.pop(subject, None)
