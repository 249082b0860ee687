"""The work S5 has handed to children, as plain data: which child took which agent types from
which parent, when it last worked, and the hour's quota of structural spawns.

A child grown for a part of the work (`vsm.queen.structure`) is watched for idleness: no S1
work done in it (its agents' performance reports count nothing) for `idle_s` makes it due
for retirement, the work returning to its parent. Quotas: at most `max_per_hour` spawns per
parent in any sliding hour (on top of the tree's depth and children quotas), and an agent
type is handed down once (a second change for the same type waits until it came back).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

HOUR_S = 3600.0


@dataclass
class Delegation:
    child: str
    parent: str
    agent_types: list[str]
    last_active: float
    spawned: Any = None
    """The `MetaSystemSpawned` envelope: the cause of the retirement S5 proposes."""
    retiring: bool = False


@dataclass
class Delegations:
    idle_s: float = 600.0
    max_per_hour: int = 2
    children: dict[str, Delegation] = field(default_factory=dict)
    spawns: dict[str, deque[float]] = field(default_factory=dict)

    def refusal(self, parent: str, agent_types: list[str], now: float) -> str | None:
        """Why a new child for these agent types of `parent` may not be spawned now."""
        taken = {t for d in self.children.values() if d.parent == parent for t in d.agent_types}
        if overlap := sorted(taken & set(agent_types)):
            return f"{', '.join(overlap)} of {parent} already work in a child"
        times = self.spawns.get(parent)
        while times and now - times[0] >= HOUR_S:
            times.popleft()
        if times is not None and len(times) >= self.max_per_hour:
            return (
                f"{parent} already grew {len(times)} children this hour "
                f"(STRUCTURE_MAX_PER_HOUR: {self.max_per_hour})"
            )
        return None

    def open(
        self, child: str, parent: str, agent_types: list[str], now: float, spawned: Any
    ) -> Delegation:
        self.spawns.setdefault(parent, deque()).append(now)
        delegation = Delegation(child, parent, list(agent_types), now, spawned)
        self.children[child] = delegation
        return delegation

    def worked(self, vsm_id: str, now: float) -> None:
        """S1 work was done in `vsm_id` (a child's activity keeps it)."""
        delegation = self.children.get(vsm_id)
        if delegation is not None:
            delegation.last_active = now

    def idle(self, now: float) -> list[Delegation]:
        """Children idle for `idle_s` whose retirement is not yet proposed (marked now)."""
        due = [
            d
            for d in self.children.values()
            if not d.retiring and now - d.last_active >= self.idle_s
        ]
        for delegation in due:
            delegation.retiring = True
        return due

    def close(self, child: str) -> Delegation | None:
        return self.children.pop(child, None)
