"""Decision rights on the broker: hold a policy for a person, then adopt, reject or expire it.

The journal asks `hold` before it adopts any version (so no caller can go around it); a
held policy is announced with `ApprovalRequested` and the caller gets `AwaitingApproval`.
`decide` and `expire` end a proposal with `ApprovalDecided`, caused by the request and
naming who decided; an approved policy is adopted with that decision as its cause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.approvals import (
    APPROVAL_REQUESTED_KEY,
    Approval,
    ApprovalDecided,
    ApprovalOutcome,
    ApprovalReply,
    ApprovalRequested,
    DecideApproval,
    approval_decided_key,
)
from vsm.contract.envelope import Envelope
from vsm.contract.policy import GovernancePolicy, Policy
from vsm.kit.bus import Bus
from vsm.queen.approvals import DEFAULT_DEADLINE_S, Desk, Proposal, needs_approval
from vsm.queen.journal import PolicyJournal
from vsm.queen.policies import PolicyRejected

log = structlog.get_logger("vsm.queen.proposals")
EXPIRED_BY = "s5:deadline"


async def nothing_kept() -> None:
    """No journal (a `Proposals` built without one): nothing to write or wait for."""


class AwaitingApproval(PolicyRejected):
    """The policy is held for a person: not in force until approved (`approval_pending`)."""

    def __init__(self, approval: Approval) -> None:
        super().__init__(
            "approval_pending",
            f"{approval.policy_type} by {approval.source} awaits approval {approval.approval_id}"
            f" until {approval.expires_at:%H:%M:%S} UTC ({approval.why})",
        )
        self.approval = approval


class Proposals:
    def __init__(self, bus: Bus, journal: PolicyJournal, desk: Desk) -> None:
        self.bus = bus
        self.journal = journal
        self.desk = desk
        self.keep: Callable[[], Awaitable[object]] = nothing_kept
        """Write the pending approvals (with S5's interventions) to S5's journal."""
        self.restored: Callable[[], Awaitable[object]] = nothing_kept
        """Wait until the approvals kept are back (at start-up)."""
        self.requests = bus.publisher(
            topology.OPERATORS, ApprovalRequested, routing_key=APPROVAL_REQUESTED_KEY
        )
        self.decisions = bus.publisher(
            topology.OPERATORS, ApprovalDecided, routing_key=approval_decided_key("<outcome>")
        )
        journal.review = self.hold

    def governance(self, vsm_id: str) -> GovernancePolicy | None:
        record = self.journal.store.latest(vsm_id, "governance")
        return record.policy if record and isinstance(record.policy, GovernancePolicy) else None

    async def hold(
        self,
        vsm_id: str,
        policy: Policy,
        *,
        source: str,
        reason: str,
        cause: Envelope[Any] | None,
        intervention_id: str | None,
        causation: list[str],
    ) -> None:
        governance = self.governance(vsm_id)
        why = needs_approval(policy, source, governance)
        if why is None:
            return
        proposal, new = self.desk.open(
            vsm_id,
            policy,
            source=source,
            reason=reason,
            why=why,
            now=datetime.now(UTC),
            deadline_s=governance.approval_deadline_s if governance else DEFAULT_DEADLINE_S,
            intervention_id=intervention_id,
            causation=causation,
        )
        if new:
            try:
                await self.keep()  # kept before it is announced
                proposal.requested = await self.requests.publish(
                    ApprovalRequested(approval=proposal.approval), cause=cause, vsm_id=vsm_id
                )
            except Exception:
                self.desk.withdraw(proposal.approval.approval_id)
                raise
            await self.keep()  # with the announcement, the cause of its decision
            log.info("approval_requested", approval=proposal.approval.approval_id, why=why)
        raise AwaitingApproval(proposal.approval)

    async def decide(self, request: DecideApproval) -> ApprovalReply:
        """Approve (adopt) or reject a pending proposal; refused when unknown or closed, and
        an approval whose policy no longer validates is refused with the reasons."""
        proposal = self.desk.waiting(request.approval_id)
        approval = proposal.approval
        if request.approve:
            self.journal.store.admit(approval.vsm_id, approval.policy_type, proposal.document)
        outcome: ApprovalOutcome = "approved" if request.approve else "rejected"
        closed = self.desk.close(proposal, outcome, request.by, datetime.now(UTC))  # before any
        await self.keep()  # await: a second decision finds it closed
        decided = await self._announce(proposal, outcome, request.by, request.note)
        record = None
        if request.approve:
            record = await self.journal.adopt(
                approval.vsm_id,
                approval.policy_type,
                proposal.document,
                source=approval.source,
                reason=f"{approval.reason} (approved by {request.by})".strip()[:4096],
                cause=decided,
                intervention_id=approval.intervention_id,
                causation=[*proposal.causation, decided.id],
                approved=True,
            )
            closed = self.desk.record_version(closed, record.version)
        log.info("approval_decided", approval=closed.approval_id, outcome=outcome, by=request.by)
        return ApprovalReply(approval=closed, record=record)

    async def expire(self, now: datetime) -> None:
        """End every proposal past its deadline: rejected, the old policy stays."""
        for proposal in self.desk.overdue(now):
            note = "no decision before the deadline: rejected, the old policy stays"
            self.desk.close(proposal, "expired", EXPIRED_BY, now)
            await self.keep()
            await self._announce(proposal, "expired", EXPIRED_BY, note)
            log.info("approval_expired", approval=proposal.approval.approval_id)

    async def _announce(
        self, proposal: Proposal, outcome: ApprovalOutcome, by: str, note: str
    ) -> Envelope[Any]:
        approval = proposal.approval
        return await self.decisions.publish(
            ApprovalDecided(
                approval_id=approval.approval_id,
                outcome=outcome,
                by=by,
                note=note,
                policy_type=approval.policy_type,
            ),
            routing_key=approval_decided_key(outcome),
            cause=proposal.requested,
            vsm_id=approval.vsm_id,
        )
