"""REST for System 3: its state, budgets, allocation requests and S3* audits.

State, budgets and audits are requests to `control` (`?vsm_id=` names the viable system,
the gateway's own when absent). An allocation request travels on `vsm.control` (key
`request.allocation`), as any S1 unit's would. Negative or absurd amounts are refused by
the models before anything is sent (422 naming the field); S3's refusals come back as
`over_budget` 422, `unknown_agent` 404 and `damped` 409.
"""

from __future__ import annotations

from litestar import Controller, get, post, put
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.control import (
    ALLOCATION_REQUEST_KEY,
    AllocationGrant,
    AllocationRequest,
    AuditCommission,
    AuditFindings,
    Resources,
    SetBudget,
    System3Query,
    System3State,
)
from vsm.contract.operations import AGENT_ID_PATTERN, AuditType
from vsm.kit.bus import expect
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    CONFLICT,
    EDGE,
    NOT_FOUND,
    PARAMS,
    BusDep,
    RestOperation,
    VsmIdParam,
    system,
)

AUDIT_MARGIN_S = 5.0
"""An audit waits up to its own timeout for the agents; the gateway waits a little longer."""


class AllocationInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    resources: Resources
    priority: int = Field(default=4, ge=0, le=9)
    reason: str = Field(default="requested", min_length=1, max_length=256)


class AuditInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    agent_ids: list[str] | None = Field(default=None, max_length=256)
    audit_type: AuditType = "resource_audit"
    timeout_s: float = Field(default=5.0, ge=0.1, le=60)


class System3Controller(Controller):
    path = "/api/vsm"
    tags = ["system 3"]

    @get("/system/3", responses=EDGE | PARAMS | ASKS, operation_class=RestOperation)
    async def state(self, bus: BusDep, vsm_id: VsmIdParam = None) -> System3State:
        """S3: the budget, what each agent holds, children's carves, damping, the last audit."""
        query = System3Query()
        return await bus.query("control", "state", query, System3State, vsm_id=system(vsm_id))

    @put("/system/3/budget", responses=BODY | ASKS)
    async def budget(
        self, bus: BusDep, data: JSONBody[Resources], vsm_id: VsmIdParam = None
    ) -> System3State:
        """Set the viable system's budget (refused below what its children carved)."""
        request = SetBudget(budget=data)
        return await bus.query("control", "budget", request, System3State, vsm_id=system(vsm_id))

    @post("/system/3/allocations", status_code=200, responses=BODY | NOT_FOUND | CONFLICT | ASKS)
    async def allocate(self, bus: BusDep, data: JSONBody[AllocationInput]) -> AllocationGrant:
        """Set one agent's allocation; S3 takes from lower priorities when the budget is short."""
        request = AllocationRequest(
            agent_id=data.agent_id,
            resources=data.resources,
            priority=data.priority,
            reason=data.reason,
        )
        reply = await bus.ask(
            request, exchange=topology.CONTROL, routing_key=ALLOCATION_REQUEST_KEY
        )
        return expect(reply, AllocationGrant)

    @post("/system/3/audit", status_code=200, responses=BODY | NOT_FOUND | ASKS)
    async def audit(
        self, bus: BusDep, data: JSONBody[AuditInput], vsm_id: VsmIdParam = None
    ) -> AuditFindings:
        """S3*: audit agents (all of the system's when none named) straight through their queues."""
        request = AuditCommission(
            agent_ids=data.agent_ids, audit_type=data.audit_type, timeout_s=data.timeout_s
        )
        return await bus.query(
            "control",
            "audit",
            request,
            AuditFindings,
            vsm_id=system(vsm_id),
            timeout=data.timeout_s + AUDIT_MARGIN_S,
        )
