"""REST for System 5: its state, decisions, policy synthesis, the policy store and identity.

Each route is one request to `queen`, which validates every policy (schema, identity): a
refusal comes back as 422 with the reasons, a missing policy or version as 404. Routes
take an optional `vsm_id` query parameter (default: the gateway's own viable system).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Controller, get, post, put
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.message import Message
from vsm.contract.policy import (
    POLICY_TYPES,
    IdentityQuery,
    PolicyDiff,
    PolicyDiffQuery,
    PolicyList,
    PolicyListQuery,
    PolicyQuery,
    PolicyRecord,
    PolicyReply,
    StorePolicy,
)
from vsm.contract.system5 import (
    Decision,
    DecisionRequest,
    DecisionType,
    SynthesisRequest,
    SynthesisResult,
    System5Query,
    System5State,
)
from vsm.kit.bus import Bus
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    EDGE,
    LOOKUP,
    NOT_FOUND,
    PARAMS,
    BusDep,
    RestOperation,
    VsmIdParam,
    system,
)

ReplyT = TypeVar("ReplyT", bound=Message)
SYNTHESIS_TIMEOUT_S = 90.0
"""Synthesis may wait on the LLM (its own timeout and retries), so it gets longer."""


class PolicyInput(BaseModel):
    """A new version: the policy document (its `policy_type` may be left out) and why."""

    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any]
    reason: str = Field(default="", max_length=4096)


class DecisionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    decision_type: DecisionType
    context: dict[str, Any] = Field(default_factory=dict)


class AnomalyInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    anomaly_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    severity: float = Field(ge=0, le=1)
    context: dict[str, Any] = Field(default_factory=dict)


def known_type(policy_type: str) -> str:
    if policy_type not in POLICY_TYPES:
        raise HTTPException(
            status_code=404,
            detail=f"unknown policy type {policy_type!r}; known: {', '.join(POLICY_TYPES)}",
        )
    return policy_type


async def ask(
    bus: Bus,
    operation: str,
    body: Message,
    expected: type[ReplyT],
    vsm_id: str | None,
    *,
    timeout: float | None = None,
) -> ReplyT:
    """Ask queen about the viable system `vsm_id` (validated; the root when absent)."""
    return await bus.query(
        "queen", operation, body, expected, vsm_id=system(vsm_id), timeout=timeout
    )


async def store(
    bus: Bus, policy_type: FromPath[str], data: PolicyInput, vsm_id: str | None
) -> PolicyRecord:
    request = StorePolicy(policy_type=policy_type, policy=data.policy, reason=data.reason)
    return (await ask(bus, "policy.store", request, PolicyReply, vsm_id)).record


class System5Controller(Controller):
    path = "/api/vsm"
    tags = ["system 5", "policy"]

    @get("/system/5", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def state(self, bus: BusDep, vsm_id: VsmIdParam = None) -> System5State:
        """S5: viability (score, coverage, terms), algedonic levels, interventions, policies;
        404 for a viable system that does not exist."""
        return await ask(bus, "state", System5Query(), System5State, vsm_id)

    @post("/system5/decision", status_code=200, responses=BODY | NOT_FOUND | ASKS)
    async def decision(
        self, bus: BusDep, data: JSONBody[DecisionInput], vsm_id: VsmIdParam = None
    ) -> Decision:
        """A decision with its reasoning and implementation steps (advice: nothing applied)."""
        request = DecisionRequest(decision_type=data.decision_type, context=data.context)
        return await ask(bus, "decision", request, Decision, vsm_id)

    @post("/system5/synthesis", status_code=200, responses=BODY | ASKS)
    async def synthesis(
        self, bus: BusDep, data: JSONBody[AnomalyInput], vsm_id: VsmIdParam = None
    ) -> SynthesisResult:
        """Synthesise and apply a policy for an anomaly (LLM when configured, else rules)."""
        request = SynthesisRequest(
            anomaly_type=data.anomaly_type, severity=data.severity, context=data.context
        )
        return await ask(
            bus, "synthesis", request, SynthesisResult, vsm_id, timeout=SYNTHESIS_TIMEOUT_S
        )

    @get("/policies", responses=EDGE | PARAMS | ASKS, operation_class=RestOperation)
    async def policies(self, bus: BusDep, vsm_id: VsmIdParam = None) -> PolicyList:
        """The latest version of every policy type."""
        return await ask(bus, "policy.list", PolicyListQuery(), PolicyList, vsm_id)

    @get("/policies/{policy_type:str}", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def latest(
        self, bus: BusDep, policy_type: FromPath[str], vsm_id: VsmIdParam = None
    ) -> PolicyRecord:
        """The latest version of one policy type."""
        query = PolicyQuery(policy_type=known_type(policy_type))
        return (await ask(bus, "policy.get", query, PolicyReply, vsm_id)).record

    @get(
        "/policies/{policy_type:str}/{version:int}",
        responses=EDGE | LOOKUP,
        operation_class=RestOperation,
    )
    async def version(
        self,
        bus: BusDep,
        policy_type: FromPath[str],
        version: FromPath[int],
        vsm_id: VsmIdParam = None,
    ) -> PolicyRecord:
        """One version of a policy type (404 when there is no such version)."""
        if version < 1:
            raise HTTPException(status_code=404, detail="versions start at 1")
        query = PolicyQuery(policy_type=known_type(policy_type), version=version)
        return (await ask(bus, "policy.get", query, PolicyReply, vsm_id)).record

    @get("/policies/{policy_type:str}/diff", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def diff(
        self,
        bus: BusDep,
        policy_type: FromPath[str],
        from_version: Annotated[int, QueryParameter(name="from", ge=1)],
        to_version: Annotated[int, QueryParameter(name="to", ge=1)],
        vsm_id: VsmIdParam = None,
    ) -> PolicyDiff:
        """Keys added, removed and changed from version `from` to version `to`."""
        query = PolicyDiffQuery(
            policy_type=known_type(policy_type),
            from_version=from_version,
            to_version=to_version,
        )
        return await ask(bus, "policy.diff", query, PolicyDiff, vsm_id)

    @put("/policies/{policy_type:str}", responses=BODY | NOT_FOUND | ASKS)
    async def put_policy(
        self,
        bus: BusDep,
        policy_type: FromPath[str],
        data: JSONBody[PolicyInput],
        vsm_id: VsmIdParam = None,
    ) -> PolicyRecord:
        """Store a new version (422 with reasons if it breaks the schema or the identity)."""
        return await store(bus, known_type(policy_type), data, vsm_id)

    @get("/identity", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def identity(self, bus: BusDep, vsm_id: VsmIdParam = None) -> PolicyRecord:
        """Purpose, values and constraints of the viable system (its latest identity policy)."""
        return (await ask(bus, "identity.get", IdentityQuery(), PolicyReply, vsm_id)).record

    @put("/identity", responses=BODY | ASKS)
    async def put_identity(
        self, bus: BusDep, data: JSONBody[PolicyInput], vsm_id: VsmIdParam = None
    ) -> PolicyRecord:
        """Declare a new identity version; later policies are checked against its constraints."""
        return await store(bus, "identity", data, vsm_id)
