"""System 3 as one object over plain data: the ledger, S2's damping, S1's reports, audits.

Handlers feed it and publish what it returns; it does no I/O and takes `now` explicitly.
What it tells about itself (state, headroom, audit reports) is in `reports`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vsm.contract.control import AllocationGrant, AllocationRequest, AuditFindings
from vsm.contract.operations import AgentInfo
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import PolicyRecord, ResourceAllocationPolicy, ThrottlePolicy
from vsm.control import policies
from vsm.control.allocation import allocate
from vsm.control.changes import Change, ChangeKind, differs
from vsm.control.damping import Damper, Held
from vsm.control.ledger import Ledger


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

    # S1 ---------------------------------------------------------------------------
    def admit(self, agent: AgentInfo) -> None:
        self.ledger.admit(agent)

    def close(self, agent_id: str) -> None:
        self.ledger.close(agent_id)
        self.damper.forget(agent_id)
        self.performance.pop(agent_id, None)

    def record_performance(self, report: UnitPerformance) -> None:
        if self.ledger.account(report.agent_id) is not None:
            self.performance[report.agent_id] = report

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
        self, desired: policies.Desired, kind: ChangeKind, label: str, cause: Any
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
