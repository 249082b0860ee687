"""Decision rights as plain data: which decisions need a person, and the proposals waiting.

`needs_approval` reads the governance policy (see `GovernancePolicy`): operators (and what
a parent hands down, itself decided above) never wait; identity and governance written by
anyone else always do; a policy type whose decision right is `operator` does; so does a
policy an `ApprovalRule` matches. The `Desk` keeps at most `max_pending` proposals, each
with its own deadline; one that expires is rejected (the old policy stays), and the ids of
recently closed ones are kept so a late answer is told it is late, not unknown.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vsm.contract.approvals import Approval, ApprovalOutcome
from vsm.contract.errors import Refused
from vsm.contract.policy import ApprovalRule, GovernancePolicy, Policy
from vsm.queen.policies import PolicyRejected, values_at

ALWAYS_AN_OPERATOR = ("identity", "governance")
DEFAULT_DEADLINE_S = 3600.0
KEEP_CLOSED = 256


def author_of(source: str) -> str:
    """`llm:claude-x` -> `llm`, `s4:variety` -> `s4`, `rules` -> `rules`."""
    return source.split(":", maxsplit=1)[0]


def matches(rule: ApprovalRule, policy: Policy, author: str) -> bool:
    if rule.policy_type != policy.policy_type or author not in rule.authors:
        return False
    if rule.path is None or rule.above is None:
        return True
    found = values_at(policy.model_dump(mode="json"), rule.path.split("."))
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and v > rule.above for v in found
    )


def needs_approval(policy: Policy, source: str, governance: GovernancePolicy | None) -> str | None:
    """Why a person must approve this policy before it takes effect; None if nobody must."""
    author, kind = author_of(source), policy.policy_type
    if author in ("operator", "parent"):
        return None
    if kind in ALWAYS_AN_OPERATOR:
        return f"{kind} changes always need an operator"
    if governance is None:
        return None
    if governance.decision_rights.get(kind) == "operator":
        return f"the decision right for {kind} is the operator's"
    for rule in governance.approvals:
        if matches(rule, policy, author):
            bound = f" with {rule.path} above {rule.above:g}" if rule.path else ""
            return rule.description or f"{kind} by {author}{bound} needs approval"
    return None


@dataclass
class Proposal:
    """A pending decision and what adopting it needs (its document, cause and chain)."""

    approval: Approval
    document: dict[str, Any]
    causation: list[str]
    requested: Any = None
    """The `ApprovalRequested` envelope: the cause of the decision that ends it."""


@dataclass
class Desk:
    max_pending: int = 64
    pending: OrderedDict[str, Proposal] = field(default_factory=OrderedDict)
    closed: OrderedDict[str, Approval] = field(default_factory=OrderedDict)

    def open(
        self,
        vsm_id: str,
        policy: Policy,
        *,
        source: str,
        reason: str,
        why: str,
        now: datetime,
        deadline_s: float,
        intervention_id: str | None,
        causation: list[str],
    ) -> tuple[Proposal, bool]:
        """The proposal for this decision and whether it is new: the same policy from the same
        author already waiting is that proposal (a rule firing again, a redelivery)."""
        document = policy.model_dump(mode="json")
        for waiting in self.pending.values():
            a = waiting.approval
            if (a.vsm_id, a.policy_type, a.source, a.policy) == (
                vsm_id,
                policy.policy_type,
                source,
                document,
            ):
                return waiting, False
        if len(self.pending) >= self.max_pending:
            raise PolicyRejected(
                "approvals_full",
                f"{self.max_pending} decisions already await a person; this one is refused "
                "(the old policy stays)",
            )
        approval = Approval(
            approval_id=f"ap-{uuid.uuid4().hex[:12]}",
            vsm_id=vsm_id,
            policy_type=policy.policy_type,
            policy=document,
            source=source,
            reason=reason[:4096],
            why=why[:1024],
            requested_at=now,
            expires_at=now + timedelta(seconds=deadline_s),
            intervention_id=intervention_id,
        )
        proposal = Proposal(approval, document, causation)
        self.pending[approval.approval_id] = proposal
        return proposal, True

    def withdraw(self, approval_id: str) -> None:
        """Forget a proposal whose announcement failed (the decision is made again)."""
        self.pending.pop(approval_id, None)

    def waiting(self, approval_id: str) -> Proposal:
        """The pending proposal, or `approval_not_found` / `approval_closed`."""
        proposal = self.pending.get(approval_id)
        if proposal is not None:
            return proposal
        closed = self.closed.get(approval_id)
        if closed is not None:
            raise Refused("approval_closed", f"approval {approval_id} is already {closed.status}")
        raise Refused("approval_not_found", f"no approval {approval_id!r} is known")

    def overdue(self, now: datetime) -> list[Proposal]:
        return [p for p in self.pending.values() if p.approval.expires_at <= now]

    def close(
        self,
        proposal: Proposal,
        outcome: ApprovalOutcome,
        by: str,
        now: datetime,
    ) -> Approval:
        closed = proposal.approval.model_copy(
            update={"status": outcome, "decided_by": by, "decided_at": now}
        )
        self.pending.pop(closed.approval_id, None)
        self.closed[closed.approval_id] = closed
        while len(self.closed) > KEEP_CLOSED:
            self.closed.popitem(last=False)
        return closed

    def record_version(self, closed: Approval, version: int) -> Approval:
        """The approved proposal, with the policy version it became."""
        adopted = closed.model_copy(update={"version": version})
        if closed.approval_id in self.closed:
            self.closed[closed.approval_id] = adopted
        return adopted

    def listing(self) -> list[Approval]:
        return [p.approval for p in self.pending.values()]
