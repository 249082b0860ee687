"""The MCP tools of S5 and S4: each one is one AMQP message to the system that owns it.

No `from __future__ import annotations` here: the SDK reads these signatures at
registration to publish each tool's input and output schema.
"""

import uuid
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context as McpContext
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from vsm.contract import topology
from vsm.contract.adaptation import ADAPTATION_REQUEST_KEY, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import Approval, ApprovalReply
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.intelligence import (
    MetaSystemNeed,
    MetaSystemNeedQuery,
    ScanRequest,
    ScanResult,
    System4Status,
    System4StatusQuery,
    VarietyReport,
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
from vsm.mcp_gateway.mcp import agents, loop
from vsm.mcp_gateway.mcp.arguments import (
    ADDITIVE,
    DESTRUCTIVE,
    READ_ONLY,
    AnomalyType,
    Context,
    Level,
    VsmIdArg,
)
from vsm.mcp_gateway.mcp.results import answered, tool_result
from vsm.mcp_gateway.rest import approvals
from vsm.mcp_gateway.rest.agents import AgentDirectory
from vsm.mcp_gateway.rest.operators import named
from vsm.mcp_gateway.rest.policy import SYNTHESIS_TIMEOUT_S

ORIGIN = "mcp-gateway/mcp"


class AdaptationTriggered(BaseModel):
    """The adaptation request sent to S4; its proposal follows on `vsm.intelligence`."""

    message_id: str
    intervention_id: str
    routing_key: str


class SignalSent(BaseModel):
    message_id: str
    kind: Literal["pain", "pleasure"]
    intensity: float
    origin: str


def register(server: MCPServer[Any], bus: Bus, max_chars: int) -> None:
    """Register every tool on `server`, each answering from `bus` within `max_chars`."""
    _register_systems(server, bus, max_chars)
    _register_approvals(server, bus, max_chars)
    agents.register(server, bus, max_chars, AgentDirectory())
    loop.register(server, bus, max_chars)


def _register_systems(server: MCPServer[Any], bus: Bus, max_chars: int) -> None:
    adaptations = bus.publisher(
        topology.INTELLIGENCE,
        AdaptationRequest,
        routing_key=ADAPTATION_REQUEST_KEY,
        description="MCP `vsm_trigger_adaptation`: ask S4 for an adaptation proposal.",
    )
    signals = bus.publisher(
        topology.ALGEDONIC,
        AlgedonicSignal,
        description="MCP `algedonic_signal`: pain or pleasure straight to S5 (and S4).",
    )

    @server.tool(annotations=READ_ONLY)
    @answered
    async def vsm_status() -> Annotated[CallToolResult, SystemStatus]:
        """Every system and gateway with its state (up/degraded/down) and viability (S5)."""
        reply = await bus.query("queen", "status", StatusQuery(), SystemStatus)
        return tool_result(reply, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def vsm_check_viability(
        vsm_id: VsmIdArg = None,
    ) -> Annotated[CallToolResult, System5State]:
        """S5's viability score with each measured term, algedonic levels and interventions."""
        reply = await bus.query("queen", "state", System5Query(), System5State, vsm_id=vsm_id)
        return tool_result(reply, max_chars)

    @server.tool(annotations=ADDITIVE)
    @answered
    async def vsm_scan_environment(
        reason: Annotated[str, Field(min_length=1, max_length=256)] = "mcp",
        vsm_id: VsmIdArg = None,
    ) -> Annotated[CallToolResult, ScanResult]:
        """S4 of `vsm_id` scans now: variety, open anomalies, meta-system need, readiness."""
        request = ScanRequest(reason=reason)
        reply = await bus.query("intelligence", "scan", request, ScanResult, vsm_id=vsm_id)
        return tool_result(reply, max_chars)

    async def synthesise(
        anomaly_type: str, severity: float, context: dict[str, Any], vsm_id: str | None
    ) -> CallToolResult:
        request = SynthesisRequest(anomaly_type=anomaly_type, severity=severity, context=context)
        reply = await bus.query(
            "queen", "synthesis", request, SynthesisResult, vsm_id=vsm_id,
            timeout=SYNTHESIS_TIMEOUT_S,
        )  # fmt: skip
        return tool_result(reply, max_chars)

    @server.tool(annotations=DESTRUCTIVE)
    @answered
    async def vsm_synthesize_policy(
        anomaly_type: AnomalyType, severity: Level, context: Context, vsm_id: VsmIdArg = None
    ) -> Annotated[CallToolResult, SynthesisResult]:
        """S5 synthesises and applies a policy answering an anomaly (LLM if configured, else
        rules); the policy is validated like any other before it is stored."""
        return await synthesise(anomaly_type, severity, context, vsm_id)

    @server.tool(annotations=DESTRUCTIVE)
    @answered
    async def synthesize_policy(
        anomaly_type: AnomalyType, severity: Level, context: Context, vsm_id: VsmIdArg = None
    ) -> Annotated[CallToolResult, SynthesisResult]:
        """Same as `vsm_synthesize_policy` (the name the original system's clients use)."""
        return await synthesise(anomaly_type, severity, context, vsm_id)

    @server.tool(annotations=ADDITIVE)
    @answered
    async def vsm_trigger_adaptation(
        trigger: Annotated[str, Field(min_length=1, max_length=64)],
        pain_level: Level,
        context: Context,
        vsm_id: VsmIdArg = None,
    ) -> Annotated[CallToolResult, AdaptationTriggered]:
        """Ask S4 for an adaptation proposal (on `vsm.intelligence`); S5 then rules on it."""
        request = AdaptationRequest(
            intervention_id=f"mcp-{uuid.uuid4().hex[:12]}",
            trigger=trigger,
            pain_level=pain_level,
            context=context,
        )
        sent = await adaptations.publish(request, vsm_id=vsm_id)
        triggered = AdaptationTriggered(
            message_id=sent.id,
            intervention_id=request.intervention_id,
            routing_key=ADAPTATION_REQUEST_KEY,
        )
        return tool_result(triggered, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def analyze_variety(vsm_id: VsmIdArg = None) -> Annotated[CallToolResult, VarietyReport]:
        """The variety S4 of `vsm_id` sees over its window (Ashby): kinds, sources, entropy,
        rate."""
        query = System4StatusQuery()
        reply = await bus.query("intelligence", "status", query, System4Status, vsm_id=vsm_id)
        return tool_result(reply.variety, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def check_meta_system_need(
        vsm_id: VsmIdArg = None,
    ) -> Annotated[CallToolResult, MetaSystemNeed]:
        """Whether the variety of `vsm_id`'s environment calls for a meta-system, with every
        factor."""
        query = MetaSystemNeedQuery()
        reply = await bus.query(
            "intelligence", "check_meta_system_need", query, MetaSystemNeed, vsm_id=vsm_id
        )
        return tool_result(reply, max_chars)

    @server.tool(annotations=ADDITIVE)
    @answered
    async def algedonic_signal(
        kind: Literal["pain", "pleasure"],
        intensity: Level,
        context: Context,
        reason: Annotated[
            str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
        ] = "operator_report",
        episode: Annotated[str | None, Field(max_length=128)] = None,
    ) -> Annotated[CallToolResult, SignalSent]:
        """Raise pain or pleasure straight to S5 (and S4) on `vsm.algedonic`; no LLM involved."""
        signal = AlgedonicSignal(
            kind=kind,
            intensity=intensity,
            origin=ORIGIN,
            reason=reason,
            episode=episode,
            context=context,
        )
        sent = await signals.publish(signal)
        result = SignalSent(message_id=sent.id, kind=kind, intensity=intensity, origin=ORIGIN)
        return tool_result(result, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def queen_decision(
        decision_type: DecisionType, context: Context, vsm_id: VsmIdArg = None
    ) -> Annotated[CallToolResult, Decision]:
        """S5's decision with its reasoning and steps (advice: nothing is applied)."""
        request = DecisionRequest(decision_type=decision_type, context=context)
        reply = await bus.query("queen", "decision", request, Decision, vsm_id=vsm_id)
        return tool_result(reply, max_chars)


class PendingApprovals(BaseModel):
    approvals: list[Approval]


def _register_approvals(server: MCPServer[Any], bus: Bus, max_chars: int) -> None:
    @server.tool(annotations=READ_ONLY)
    @answered
    async def vsm_approvals() -> Annotated[CallToolResult, PendingApprovals]:
        """Decisions S5 holds for a person (decision rights), oldest first: the policy, who
        wrote it, why it waits and until when (then it expires and the old policy stays)."""
        result = PendingApprovals(approvals=await approvals.pending(bus))
        return tool_result(result, max_chars)

    @server.tool(annotations=DESTRUCTIVE)
    @answered
    async def vsm_decide_approval(
        approval_id: Annotated[str, Field(min_length=1, max_length=128)],
        decision: approvals.Verdict,
        ctx: McpContext,
        note: Annotated[str, Field(max_length=1024)] = "",
    ) -> Annotated[CallToolResult, ApprovalReply]:
        """Approve (the policy takes effect now) or reject (the old policy stays) a pending
        proposal; needs an operate token, and the trail names the token that decided."""
        request = ctx.request_context.request
        headers = getattr(request, "headers", None)
        by = named("mcp", headers.get("authorization") if headers is not None else None)
        reply = await approvals.decide(bus, approval_id, decision, by, note)
        return tool_result(reply, max_chars)
