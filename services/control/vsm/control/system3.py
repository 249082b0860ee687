"""System 3 as one object over plain data: the ledger, S2's damping, S1's reports, audits.

Handlers feed it and publish what it returns; it does no I/O and takes `now` explicitly.
What it tells about itself (state, headroom, audit reports) is in `reports`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vsm.contract.control import AllocationGrant, AllocationRequest, AuditFindings, Resources
from vsm.contract.llm import LlmUsage
from vsm.contract.operations import AgentInfo
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import PolicyRecord, ResourceAllocationPolicy, ThrottlePolicy
from vsm.control import budgets, policies, spending
from vsm.control.allocation import allocate
from vsm.control.changes import Change, ChangeKind, differs
from vsm.control.damping import Damper, Held
from vsm.control.ledger import Account, Ledger
from vsm.control.spending import Crossing, DaySpend


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Expiry:
    at: datetime
    label: str
    cause: Any


@dataclass
class System3:
    ledger: Ledger
    damper: Damper = field(default_factory=Damper)
    performance: dict[str, UnitPerformance] = field(default_factory=dict)
    last_audit: dict[str, AuditFindings] = field(default_factory=dict)
    throttle_expiry: dict[str, Expiry] = field(default_factory=dict)
    spend: DaySpend = field(default_factory=lambda: DaySpend(day=utc_today()))
    stirs: int = 0
    """Messages S3 handled (`stir`): what it reports on its own clock (headroom) is looked at
    again only when this, its journal or the day moved."""

    def stir(self) -> None:
        self.stirs += 1

    # S1 ---------------------------------------------------------------------------
    def admit(self, agent: AgentInfo) -> list[Change]:
        """Open the agent's account; in a system with a USD budget it gets its first share of
        the daily cap (the change that tells it)."""
        if self.ledger.account(agent.agent_id) is not None:
            return []
        opened = self.ledger.admit(agent)
        if opened is None:
            return []
        opened.usd_share = spending.first_share(self.ledger.systems[opened.vsm_id])
        if opened.usd_share is None:
            return []
        reason = f"a share of {opened.usd_share:g} USD/day of {opened.vsm_id}'s LLM budget"
        return [Change.of(opened, "budget", reason)]

    def rehome(self, agent: AgentInfo) -> list[Change]:
        """The agent now belongs to `agent.vsm_id`: its account moves there with it (an
        agent S3 has no account of yet is admitted there)."""
        moved = self.ledger.move(agent.agent_id, agent.vsm_id)
        return [] if moved is not None else self.admit(agent)

    def close(self, agent_id: str) -> bool:
        """Close the agent's account; whether that changed more than S1's registry can tell
        again (its USD share, or what it spent today, which stays its system's)."""
        account = self.ledger.close(agent_id)
        kept = False
        if account is not None:
            spend = self.today()
            spent = account.agent_id in spend.agents or account.agent_id in spend.calls
            kept = spent or account.usd_share is not None
            spending.gone(spend, account)
        self.damper.forget(agent_id)
        self.performance.pop(agent_id, None)
        return kept

    def record_performance(self, report: UnitPerformance) -> None:
        if self.ledger.account(report.agent_id) is not None:
            self.performance[report.agent_id] = report
            if report.llm_spent_today_usd:
                spending.reported(
                    self.today(), self.ledger, report.agent_id, report.llm_spent_today_usd
                )

    # LLM spend ----------------------------------------------------------------------
    def today(self, day: date | None = None) -> DaySpend:
        """The day's spend (a new UTC day starts afresh)."""
        self.spend = spending.today_of(self.spend, day or utc_today())
        return self.spend

    def set_budget(self, vsm_id: str, budget: Resources, cause: Any = None) -> list[Change]:
        """Set the budget (or refuse it, unchanged); a new USD budget spreads the shares."""
        before = self.ledger.peek(vsm_id).budget.llm_usd_per_day
        budgets.set_budget(self.ledger, vsm_id, budget)
        if budget.llm_usd_per_day == before:
            return []
        system = self.ledger.systems[vsm_id]
        wanted = spending.spread(system, self.today(), vsm_id)
        return self._shares(wanted, f"{vsm_id}'s LLM budget is now {_usd(budget)}", cause)

    def use(
        self, usage: LlmUsage, vsm_id: str, cause: Any = None
    ) -> tuple[list[Crossing], list[Change]]:
        """Count one LLM call's cost; what it pushed past its caps, and the shares it moved
        (a busy agent past `WARN_AT` of its share, or refused, gets more from the idle)."""
        spend = self.today()
        if not spending.charge(spend, self.ledger, vsm_id, usage.agent_id, usage.cost_usd):
            return [], []
        if usage.refused:
            found = spending.refused(spend, self.ledger, usage.agent_id)
            crossed = [] if found is None else [found]
        else:
            crossed = spending.crossings(spend, self.ledger, vsm_id, usage.agent_id)
        busy = self.ledger.account(usage.agent_id)
        pressed = usage.refused or any(c.agent_id for c in crossed)
        if busy is None or busy.usd_share is None or not pressed:
            return crossed, []  # no share to grow (refused for its own cap, not S3's)
        system = self.ledger.systems[busy.vsm_id]
        wanted = spending.shift(system, spend, busy)
        if not wanted and usage.refused and busy.vsm_id not in spend.exhausted:
            spend.exhausted.add(busy.vsm_id)  # nothing left to give anywhere in the system
            spent = spending.system_spent(spend, system, busy.vsm_id)
            cap = spending.own_cap(system) or 0.0
            crossed.append(Crossing("exhausted", busy.vsm_id, None, spent, cap))
        reason = f"{busy.agent_id} is busy: shares of the LLM budget moved to it from the idle"
        return crossed, self._shares(wanted, reason, cause)

    def _shares(self, wanted: list[Account], why: str, cause: Any) -> list[Change]:
        changes = []
        for account in wanted:
            share = (
                "no USD budget" if account.usd_share is None else f"{account.usd_share:g} USD/day"
            )
            desired = policies.Desired(
                account, "budget", f"{why}: {account.agent_id} holds {share}"
            )
            change = self._apply(desired, "budget", None, cause)
            if change is not None:
                changes.append(change)
        return changes

    # Requests and policy --------------------------------------------------------------
    def request(
        self, request: AllocationRequest, now: datetime, cause: Any = None
    ) -> tuple[AllocationGrant, list[Change]]:
        return allocate(self.ledger, request, self.damper.active(now), cause)

    def apply_policy(self, record: PolicyRecord, now: datetime, cause: Any) -> list[Change]:
        system = self.ledger.systems.get(record.vsm_id)
        label = f"{record.policy_type} v{record.version}"
        policy = record.policy
        if system is None:
            return []
        if isinstance(policy, ThrottlePolicy):
            self.throttle_expiry.pop(record.vsm_id, None)
            if policy.expires_after_s is not None:
                at = record.created_at + timedelta(seconds=policy.expires_after_s)
                self.throttle_expiry[record.vsm_id] = Expiry(at, label, cause)
            wanted = policies.throttle(system, policy, label)
        elif isinstance(policy, ResourceAllocationPolicy):
            wanted = policies.shares(system, policy, label, record.vsm_id)
        else:
            return []
        return self.settle(wanted, label, now, cause)

    def settle(
        self, wanted: list[policies.Desired], label: str, now: datetime, cause: Any
    ) -> list[Change]:
        damped, changes = self.damper.active(now), []
        for desired in wanted:
            agent_id = desired.account.agent_id
            if agent_id in damped:
                self.damper.hold(agent_id, Held(desired, label, cause))
                continue
            change = self._apply(desired, desired.kind, label, cause)
            if change is not None:
                changes.append(change)
        return changes

    def _apply(
        self, desired: policies.Desired, kind: ChangeKind, label: str | None, cause: Any
    ) -> Change | None:
        system = self.ledger.systems.get(desired.account.vsm_id)
        current = system.accounts.get(desired.account.agent_id) if system else None
        if system is None or current is None:
            return None  # the agent left while its change waited
        system.accounts[current.agent_id] = desired.account
        if not differs(current, desired.account):
            return None
        return Change.of(desired.account, kind, desired.reason, label, cause)

    def tick(self, now: datetime) -> list[Change]:
        """Release what damping held back, and lift throttles whose time is up."""
        changes = []
        for held in self.damper.expire(now):
            change = self._apply(held.desired, "damped_release", held.policy, held.cause)
            if change is not None:
                changes.append(change)
        for vsm_id, expiry in list(self.throttle_expiry.items()):
            if expiry.at <= now and vsm_id in self.ledger.systems:
                del self.throttle_expiry[vsm_id]
                label = f"{expiry.label} expired"
                nothing = ThrottlePolicy(policy_type="throttle")
                lifted = policies.throttle(self.ledger.systems[vsm_id], nothing, label)
                changes.extend(self.settle(lifted, label, now, expiry.cause))
        return changes


def _usd(budget: Resources) -> str:
    usd = budget.llm_usd_per_day
    return "unbounded" if usd is None else f"{usd:g} USD/day"
