"""REST for System 4 (status, scans, meta-system need) and the algedonic entry for people.

The algedonic entry publishes straight onto `vsm.algedonic`, as any S1 unit would: the
algedonic path never waits on a service to answer. Bad input is refused before anything is
published: 422 naming each field, 404 for a signal that is neither pleasure nor pain.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.intelligence import (
    MetaSystemNeed,
    MetaSystemNeedQuery,
    ScanRequest,
    ScanResult,
    System4Rules,
    System4Status,
    System4StatusQuery,
)
from vsm.contract.message import Message
from vsm.contract.rules import MAX_RULES, RuleDeclaration
from vsm.kit.bus import Bus
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    EDGE,
    LOOKUP,
    MUTATION,
    NOT_FOUND,
    BusDep,
    RestOperation,
    VsmIdParam,
    system,
)

ReplyT = TypeVar("ReplyT", bound=Message)
ORIGIN = "mcp-gateway/rest"
SIGNALS = ("pleasure", "pain")


class AlgedonicInput(BaseModel):
    """What a person feels: how strongly (0..1), why (a stable code) and any context."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    intensity: float = Field(ge=0.0, le=1.0)
    context: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(
        default="operator_report", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    episode: str | None = Field(default=None, max_length=128)


class RulesInput(BaseModel):
    """A viable system's own rules, as its organisation file declares them."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleDeclaration] = Field(max_length=MAX_RULES)


class AlgedonicAccepted(BaseModel):
    id: str
    kind: Literal["pain", "pleasure"]
    intensity: float
    origin: str


async def feel(
    bus: Bus, kind: Literal["pain", "pleasure"], data: AlgedonicInput
) -> AlgedonicAccepted:
    signal = AlgedonicSignal(
        kind=kind,
        intensity=data.intensity,
        origin=ORIGIN,
        reason=data.reason,
        episode=data.episode,
        context=data.context,
    )
    sent = await bus.publish(topology.ALGEDONIC, signal)
    return AlgedonicAccepted(id=sent.id, kind=kind, intensity=data.intensity, origin=ORIGIN)


class System4Controller(Controller):
    path = "/api/vsm"
    tags = ["system 4", "algedonic"]

    @get("/system/4", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def status(self, bus: BusDep, vsm_id: VsmIdParam = None) -> System4Status:
        """S4 of `vsm_id` (the root when absent): series watched, open anomalies, variety,
        readiness, proposals, rules, outside sources, LLM on or off; 404 for no such system."""
        return await bus.query(
            "intelligence", "status", System4StatusQuery(), System4Status, vsm_id=system(vsm_id)
        )

    @post(
        "/system/4/scan",
        status_code=200,
        responses=MUTATION | LOOKUP,
        operation_class=RestOperation,
    )
    async def scan(self, bus: BusDep, vsm_id: VsmIdParam = None) -> ScanResult:
        """Scan the environment now (also published on `vsm.intelligence` as `scan.result`)."""
        request = ScanRequest(reason="rest")
        return await bus.query("intelligence", "scan", request, ScanResult, vsm_id=system(vsm_id))

    @get("/system/4/meta-system-need", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def meta_system_need(self, bus: BusDep, vsm_id: VsmIdParam = None) -> MetaSystemNeed:
        """Whether the environment's variety calls for a meta-system, with its factors."""
        query = MetaSystemNeedQuery()
        return await bus.query(
            "intelligence", "check_meta_system_need", query, MetaSystemNeed, vsm_id=system(vsm_id)
        )

    @put("/system/4/rules", responses=BODY | NOT_FOUND | ASKS)
    async def rules(
        self, bus: BusDep, data: JSONBody[RulesInput], vsm_id: VsmIdParam = None
    ) -> System4Status:
        """Replace the system's own S4 rules (docs/rules.md); 422 naming each bad rule's
        field, line and column, and nothing changed."""
        request = System4Rules(rules=data.rules)
        return await bus.query(
            "intelligence", "rules", request, System4Status, vsm_id=system(vsm_id)
        )

    @post("/algedonic/pain", status_code=202, responses=BODY)
    async def pain(self, bus: BusDep, data: JSONBody[AlgedonicInput]) -> AlgedonicAccepted:
        """Raise pain straight to S5 (and S4) on `vsm.algedonic`."""
        return await feel(bus, "pain", data)

    @post("/algedonic/pleasure", status_code=202, responses=BODY)
    async def pleasure(self, bus: BusDep, data: JSONBody[AlgedonicInput]) -> AlgedonicAccepted:
        """Signal pleasure straight to S5 (and S4) on `vsm.algedonic`."""
        return await feel(bus, "pleasure", data)

    @post("/algedonic/{signal:str}", include_in_schema=False)
    async def unknown_signal(self, signal: FromPath[str]) -> Response[dict[str, Any]]:
        """Any other signal: a clear 404, and nothing published."""
        return Response(
            {
                "error": "unknown_signal",
                "message": f"unknown algedonic signal {signal!r}: use one of {', '.join(SIGNALS)}",
                "details": {"signal": signal, "allowed": list(SIGNALS)},
            },
            status_code=404,
        )
