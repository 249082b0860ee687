"""S3's ledger: per viable system a budget, what each agent holds, and what children carved.

Plain data and plain functions, no I/O. A viable system S3 has not heard of yet starts with
the default budget. An agent's `base_slots` are the slots it holds when no throttle caps it,
so that lifting a throttle can give them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vsm.contract.control import Resources
from vsm.contract.operations import AgentInfo
from vsm.control.resources import Amounts, amounts, minus, total


@dataclass
class Account:
    """One agent's allocation as S3 granted it."""

    agent_id: str
    agent_type: str
    vsm_id: str
    resources: Resources
    base_slots: int
    priority: int = 4
    max_rate_per_s: float | None = None
    limited: bool = False
    """A throttle limit applies to this agent now."""
    slot_cap: int | None = None
    """The throttle's `max_concurrency` for this agent, while it applies."""
    reason: str = "spawned"
    usd_share: float | None = None
    """Its share of the system's daily LLM cap, in USD (None: the system has no USD budget)."""


@dataclass
class SystemBudget:
    budget: Resources
    accounts: dict[str, Account] = field(default_factory=dict)
    children: dict[str, Resources] = field(default_factory=dict)

    def allocated(self) -> Amounts:
        return total(a.resources for a in self.accounts.values())

    def committed(self, *, except_child: str | None = None) -> Amounts:
        """What agents hold plus what children carved (leaving one child out when asked)."""
        carved = (r for child, r in self.children.items() if child != except_child)
        return total([*(a.resources for a in self.accounts.values()), *carved])

    def free(self, *, except_child: str | None = None) -> Amounts:
        return minus(amounts(self.budget), self.committed(except_child=except_child))


MAX_GONE = 10_000
"""Terminated agents S3 remembers (see `Ledger.gone`)."""


@dataclass
class Ledger:
    default_budget: Resources
    agent_memory_mb: int = 128
    minimums: Resources = field(default_factory=Resources)
    """The least a budget set or carved may hold (`vsm.control.budgets.check_minimums`)."""
    systems: dict[str, SystemBudget] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    """Agent id -> the viable system it belongs to."""
    gone: dict[str, None] = field(default_factory=dict)
    """Agents terminated, oldest first: a late listing from S1 must not bring them back.
    The latest `MAX_GONE` are kept (a listing late by that many terminations is not late)."""

    def system(self, vsm_id: str) -> SystemBudget:
        known = self.systems.get(vsm_id)
        if known is None:
            known = self.systems[vsm_id] = SystemBudget(budget=self.default_budget)
        return known

    def peek(self, vsm_id: str) -> SystemBudget:
        """The system's budget as it stands, without making S3 keep an unknown system."""
        return self.systems.get(vsm_id) or SystemBudget(budget=self.default_budget)

    def account(self, agent_id: str) -> Account | None:
        vsm_id = self.where.get(agent_id)
        return None if vsm_id is None else self.systems[vsm_id].accounts.get(agent_id)

    def admit(self, agent: AgentInfo) -> Account | None:
        """Open an account for a running agent (idempotent: a known agent keeps its own)."""
        if agent.state != "running" or agent.agent_id in self.gone:
            return None
        known = self.account(agent.agent_id)
        if known is not None:
            return known
        opened = Account(
            agent_id=agent.agent_id,
            agent_type=agent.agent_type,
            vsm_id=agent.vsm_id,
            resources=Resources(concurrency_slots=agent.allocation, memory_mb=self.agent_memory_mb),
            base_slots=agent.allocation,
        )
        self.system(agent.vsm_id).accounts[agent.agent_id] = opened
        self.where[agent.agent_id] = agent.vsm_id
        return opened

    def move(self, agent_id: str, to_vsm_id: str) -> Account | None:
        """The agent's account, with its allocation, into another system S3 keeps (a child's
        carved budget, or back to its parent); None when either is unknown."""
        vsm_id = self.where.get(agent_id)
        if vsm_id is None or to_vsm_id not in self.systems:
            return None
        account = self.systems[vsm_id].accounts.pop(agent_id)
        account.vsm_id = to_vsm_id
        self.systems[to_vsm_id].accounts[agent_id] = account
        self.where[agent_id] = to_vsm_id
        self._forget_if_released(vsm_id)
        return account

    def _forget_if_released(self, vsm_id: str) -> None:
        """A child whose budget was released while agents were still in it goes with the
        last of them."""
        own, parent = self.systems.get(vsm_id), self.systems.get(parent_of(vsm_id) or "")
        if own is None or parent is None or own.accounts or own.children:
            return
        if vsm_id not in parent.children:
            del self.systems[vsm_id]

    def close(self, agent_id: str) -> Account | None:
        """The agent is gone: its allocation returns to its system's budget."""
        self.gone[agent_id] = None
        while len(self.gone) > MAX_GONE:  # evict the oldest termination
            del self.gone[next(iter(self.gone))]
        vsm_id = self.where.pop(agent_id, None)
        if vsm_id is None:
            return None
        return self.systems[vsm_id].accounts.pop(agent_id, None)


def parent_of(vsm_id: str) -> str | None:
    return vsm_id.rsplit("/", 1)[0] if "/" in vsm_id else None
