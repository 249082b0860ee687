"""REST for decision rights: the decisions S5 holds for a person, and a person's decision.

`GET /api/vsm/approvals` lists the pending proposals of every viable system, oldest first;
`POST /api/vsm/approvals/{id}` approves or rejects one (operate scope: a read token gets
403 at the gate). 404 for a proposal S5 does not know, 409 for one already decided or
expired, 422 naming the field of a bad body or with the reasons of a policy that no longer
validates.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.approvals import (
    Approval,
    ApprovalList,
    ApprovalQuery,
    ApprovalReply,
    DecideApproval,
)
from vsm.kit.bus import Bus
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    CONFLICT,
    EDGE,
    NOT_FOUND,
    BusDep,
    RestOperation,
)
from vsm.mcp_gateway.rest.operators import caller

Verdict = Literal["approve", "reject"]


class DecisionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Verdict
    note: str = Field(default="", max_length=1024)


async def pending(bus: Bus) -> list[Approval]:
    return (await bus.query("queen", "approval.list", ApprovalQuery(), ApprovalList)).approvals


async def decide(
    bus: Bus, approval_id: str, decision: Verdict, by: str, note: str
) -> ApprovalReply:
    """One person's decision on a proposal (S5 answers 404 / 409 / 422 refusals)."""
    request = DecideApproval(
        approval_id=approval_id[:128], approve=decision == "approve", by=by, note=note
    )
    return await bus.query("queen", "approval.decide", request, ApprovalReply)


class ApprovalsController(Controller):
    path = "/api/vsm/approvals"
    tags = ["operators"]

    @get("/", responses=EDGE | ASKS, operation_class=RestOperation)
    async def approvals(self, bus: BusDep) -> list[Approval]:
        """Decisions S5 holds for a person (decision rights), oldest first: the policy, who
        wrote it, why it waits and until when (then it expires and the old policy stays)."""
        return await pending(bus)

    @post("/{approval_id:str}", status_code=200, responses=BODY | NOT_FOUND | CONFLICT | ASKS)
    async def decide(
        self,
        bus: BusDep,
        request: Request[Any, Any, Any],
        approval_id: FromPath[str],
        data: JSONBody[DecisionInput],
    ) -> ApprovalReply:
        """Approve (the policy takes effect now) or reject (the old policy stays) a pending
        proposal; the decision is on the causal trail with who decided."""
        return await decide(bus, approval_id, data.decision, caller(request), data.note)
