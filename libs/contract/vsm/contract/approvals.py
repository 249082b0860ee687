"""Decision rights: policies S5 holds back until a person approves them.

When the governance policy says a decision needs a person (see `GovernancePolicy`), S5 does
not adopt it: it opens a pending proposal and announces it with `ApprovalRequested` on
`vsm.operators` (key `approval.requested`), which the telegram-gateway brings to the
operators' chats. An operator approves or rejects it (`DecideApproval`, a request to
`queen.approval.decide`); past its deadline it expires, and the old policy stays. Either
way S5 announces `ApprovalDecided` (key `approval.decided.<outcome>`), caused by the
request and naming who decided; an approved policy's `PolicyChanged` is caused by that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.message import Message
from vsm.contract.policy import PolicyRecord, PolicyType

__all__ = [
    "APPROVAL_ID",
    "APPROVAL_REQUESTED_KEY",
    "Approval",
    "ApprovalDecided",
    "ApprovalList",
    "ApprovalOutcome",
    "ApprovalQuery",
    "ApprovalReply",
    "ApprovalRequested",
    "ApprovalStatus",
    "DecideApproval",
    "Decider",
    "approval_decided_key",
]

APPROVAL_REQUESTED_KEY = "approval.requested"
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]
ApprovalOutcome = Literal["approved", "rejected", "expired"]
APPROVAL_ID = r"^ap-[a-f0-9]{12}$"
Decider = Field(min_length=1, max_length=128, description="Who decided, e.g. `telegram:alice`.")


def approval_decided_key(outcome: str) -> str:
    """Routing key on `vsm.operators` for the end of a proposal."""
    return f"approval.decided.{outcome}"


class Approval(BaseModel):
    """One proposal held for a person: the policy, who wrote it and why it waits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_id: str = Field(pattern=APPROVAL_ID)
    vsm_id: str
    policy_type: PolicyType
    policy: dict[str, Any]
    source: str = Field(description="Who wrote the policy (`rules`, `s4:<kind>`, `llm:<model>`).")
    reason: str = Field(default="", max_length=4096)
    why: str = Field(max_length=1024, description="The decision right that holds it back.")
    requested_at: datetime
    expires_at: datetime
    status: ApprovalStatus = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    version: int | None = Field(default=None, description="The version it became, if approved.")
    intervention_id: str | None = None


class ApprovalRequested(Message):
    TYPE: ClassVar[str] = "vsm.s5.approval.requested.v1"

    approval: Approval


class ApprovalDecided(Message):
    """The end of a proposal: approved (then adopted), rejected, or expired (rejected)."""

    TYPE: ClassVar[str] = "vsm.s5.approval.decided.v1"

    approval_id: str = Field(pattern=APPROVAL_ID)
    outcome: ApprovalOutcome
    by: str = Decider
    note: str = Field(default="", max_length=1024)
    policy_type: PolicyType


# Requests to `queen` and their replies ------------------------------------------------------


class ApprovalQuery(Message):
    """The pending proposals of every viable system, oldest first."""

    TYPE: ClassVar[str] = "vsm.s5.approval.list-query.v1"


class ApprovalList(Message):
    TYPE: ClassVar[str] = "vsm.s5.approval.list.v1"

    approvals: list[Approval]


class DecideApproval(Message):
    """An operator's approval or rejection; the gateways send it only for operators.

    Refused with `approval_not_found` (no such proposal) or `approval_closed` (already
    decided or expired)."""

    TYPE: ClassVar[str] = "vsm.s5.approval.decide.v1"

    approval_id: str = Field(min_length=1, max_length=128)
    approve: bool
    by: str = Decider
    note: str = Field(default="", max_length=1024)


class ApprovalReply(Message):
    TYPE: ClassVar[str] = "vsm.s5.approval.v1"

    approval: Approval
    record: PolicyRecord | None = Field(default=None, description="The policy adopted, if any.")
