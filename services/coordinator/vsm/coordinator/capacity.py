"""S1 units' capacity as S2 sees it: free slots and an optional dispatch rate per agent.

An agent takes a command when it has a free slot (slots from its registry entry, then from
S3's `AllocationChanged`) and, when S3 set a rate, a token in its bucket. A command holds
its slot until the agent answers, so S2 never queues work inside an agent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import TypePressure, WorkItem
from vsm.contract.operations import AgentInfo

TYPE_ADDRESS = "type:"
MAX_ROUTES = 1000
"""Lanes handed to children at once (S5's quotas keep it far below)."""


def address(item: WorkItem, vsm_id: str) -> str:
    """Whom a work item waits for: its agent, or `type:<vsm_id>:<agent_type>` (any agent of
    the type in the item's viable system)."""
    return item.agent_id or f"{TYPE_ADDRESS}{vsm_id}:{item.agent_type}"


def addressed_type(address: str) -> tuple[str, str] | None:
    """(vsm_id, agent_type) of a type address; None for an agent id."""
    if not address.startswith(TYPE_ADDRESS):
        return None
    vsm_id, _, agent_type = address.removeprefix(TYPE_ADDRESS).rpartition(":")
    return vsm_id, agent_type


@dataclass
class TokenBucket:
    """`rate_per_s` tokens a second, at most `max(1, rate)` saved up (a burst of one second)."""

    rate_per_s: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate_per_s: float, now: float) -> TokenBucket:
        return cls(rate_per_s, max(1.0, rate_per_s), now)

    def ready(self, now: float) -> bool:
        if now > self.stamp:
            burst = max(1.0, self.rate_per_s)
            self.tokens = min(burst, self.tokens + (now - self.stamp) * self.rate_per_s)
            self.stamp = now
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        if not self.ready(now):
            return False
        self.tokens -= 1.0
        return True


@dataclass
class AgentCapacity:
    agent_id: str
    agent_type: str
    vsm_id: str
    slots: int
    rate: TokenBucket | None = None
    in_flight: int = 0
    allocated: bool = False
    """S3 has set the slots: the registry's value at spawn no longer counts."""
    resting_until: float = 0.0
    """No work until then (its last command found no route)."""

    @property
    def max_rate_per_s(self) -> float | None:
        return None if self.rate is None else self.rate.rate_per_s

    def can_take(self, now: float) -> bool:
        if now < self.resting_until:
            return False
        return self.in_flight < self.slots and (self.rate is None or self.rate.ready(now))

    def rest(self, until: float) -> None:
        self.resting_until = until

    def take(self, now: float) -> None:
        self.in_flight += 1
        if self.rate is not None:
            self.rate.take(now)

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)


def direction(slots: tuple[int, float | None], then: tuple[int, float | None]) -> int:
    """+1 when an allocation grew, -1 when it shrank, 0 when unchanged (slots first, then rate;
    no rate means unlimited)."""
    if slots[0] != then[0]:
        return 1 if then[0] > slots[0] else -1
    before, after = (math.inf if r is None else r for r in (slots[1], then[1]))
    return 0 if before == after else (1 if after > before else -1)


class Fleet:
    """The running agents S2 may dispatch to, with their capacity."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentCapacity] = {}
        self.routes: dict[tuple[str, str], str] = {}
        """(vsm_id, agent_type) -> the viable system its work is dispatched in now: the
        child that took the type over (a structural change)."""

    def rehome(self, info: AgentInfo, from_vsm_id: str) -> None:
        """An agent moved to another viable system, and the lane of its type with it: work
        for the type in `from_vsm_id` goes to the new system, or comes back when the agent
        returns to the system that handed the type over."""
        known = self.agents.get(info.agent_id)
        if known is not None:
            known.vsm_id = info.vsm_id
        lane, back = (from_vsm_id, info.agent_type), (info.vsm_id, info.agent_type)
        if self.routes.get(back) == from_vsm_id:
            del self.routes[back]
        elif len(self.routes) < MAX_ROUTES:
            self.routes[lane] = info.vsm_id

    def resolve(self, typed: tuple[str, str]) -> tuple[str, str]:
        """Where the work addressed to a type of a system is dispatched now."""
        return self.routes.get(typed, typed[0]), typed[1]

    def learn(self, info: AgentInfo) -> None:
        """Apply a registry entry (idempotent): a running agent joins, a terminated one leaves."""
        if info.state != "running":
            self.agents.pop(info.agent_id, None)
            return
        known = self.agents.get(info.agent_id)
        if known is None:
            self.agents[info.agent_id] = AgentCapacity(
                info.agent_id, info.agent_type, info.vsm_id, info.allocation
            )
        elif not known.allocated:
            known.slots = info.allocation

    def retire(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)

    def allocate(self, change: AllocationChanged, now: float) -> int | None:
        """Apply S3's allocation to a known agent; the direction of the change (for the
        oscillation detector), or None when S2 does not know the agent."""
        agent = self.agents.get(change.agent_id)
        if agent is None:
            return None
        before = (agent.slots, agent.max_rate_per_s)
        agent.slots = change.resources.concurrency_slots
        agent.allocated = True
        rate = change.max_rate_per_s
        if rate is None:
            agent.rate = None
        elif agent.rate is None or agent.rate.rate_per_s != rate:
            agent.rate = TokenBucket.full(rate, now)
        return direction(before, (agent.slots, rate))

    def can_take(self, address: str, now: float) -> bool:
        """Whether the agent (or, for `type:<agent_type>`, some agent of the type) can take
        a command now."""
        return self.pick(address, now) is not None

    def pick(self, address: str, now: float) -> AgentCapacity | None:
        """The agent addressed, or the least busy agent of the type that can take one now."""
        typed = addressed_type(address)
        if typed is None:
            agent = self.agents.get(address)
            return agent if agent is not None and agent.can_take(now) else None
        typed = self.resolve(typed)
        able = [
            a for a in self.agents.values() if (a.vsm_id, a.agent_type) == typed and a.can_take(now)
        ]
        return min(able, key=lambda a: (a.in_flight, a.agent_id), default=None)

    def pressure(self, vsm_id: str, queued: dict[str, int]) -> dict[str, TypePressure]:
        """Per agent type of `vsm_id`: running agents, work waiting for them (addressed to
        one of them or to the type), commands in flight. Types with nothing are left out."""
        return self.pressures(queued).get(vsm_id, {})

    def pressures(self, queued: dict[str, int]) -> dict[str, dict[str, TypePressure]]:
        """`pressure` of every viable system, in one walk over the agents (not one per
        system: S2's clock costs the agents once, however many systems they are in)."""
        systems: dict[str, dict[str, list[int]]] = {}
        for agent in self.agents.values():
            types = systems.setdefault(agent.vsm_id, {})
            counts = types.setdefault(agent.agent_type, [0, 0, 0])
            counts[0] += 1
            counts[1] += queued.get(agent.agent_id, 0)
            counts[2] += agent.in_flight
        for waiting_for, waiting in queued.items():
            typed = addressed_type(waiting_for)
            typed = self.resolve(typed) if typed is not None else None
            if typed is not None:
                types = systems.setdefault(typed[0], {})
                types.setdefault(typed[1], [0, 0, 0])[1] += waiting
        return {
            vsm_id: {
                t: TypePressure(agents=a, queued=q, in_flight=f) for t, (a, q, f) in types.items()
            }
            for vsm_id, types in systems.items()
        }
