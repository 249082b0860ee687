"""The MCP tools of the loop's upper half: S3 allocation, S2 coordination, recursion, trace.

No `from __future__ import annotations`: the SDK reads these signatures for the schemas.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from vsm.contract import topology
from vsm.contract.control import (
    ALLOCATION_REQUEST_KEY,
    AllocationGrant,
    AllocationRequest,
    Resources,
)
from vsm.contract.coordination import CoordinateMessage, CoordinationReceipt
from vsm.contract.policy import IdentityConstraint, Text
from vsm.contract.recursion import (
    SEGMENT_PATTERN,
    MetaSystemDescription,
    MetaSystemInfo,
    SpawnMetaSystem,
)
from vsm.contract.system5 import Trace, TraceQuery
from vsm.kit.bus import Bus, expect
from vsm.mcp_gateway.mcp.arguments import ADDITIVE, DESTRUCTIVE, READ_ONLY, AgentId, VsmIdArg
from vsm.mcp_gateway.mcp.results import answered, tool_result

Topic = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def register(server: MCPServer[Any], bus: Bus, max_chars: int) -> None:
    @server.tool(annotations=ADDITIVE)
    @answered
    async def vsm_spawn_meta_system(
        *,
        name: Annotated[str, Field(pattern=SEGMENT_PATTERN)],
        purpose: Text,
        budget: Resources,
        values: Annotated[list[Text], Field(default_factory=list, max_length=32)],
        constraints: Annotated[list[IdentityConstraint], Field(default_factory=list)],
        parent_vsm_id: VsmIdArg = None,
    ) -> Annotated[CallToolResult, MetaSystemInfo]:
        """Spawn a child viable system `<parent>/<name>` with its identity and a budget carved
        from the parent's (depth <= 5, <= 10 children, budget within the parent's free one)."""
        request = SpawnMetaSystem(
            name=name, purpose=purpose, values=values, constraints=constraints, budget=budget
        )
        reply = await bus.query(
            "queen", "meta.spawn", request, MetaSystemDescription, vsm_id=parent_vsm_id
        )
        return tool_result(reply.meta_system, max_chars)

    @server.tool(annotations=DESTRUCTIVE)
    @answered
    async def vsm_allocate_resources(
        agent_id: AgentId,
        resources: Resources,
        priority: Annotated[int, Field(ge=0, le=9)] = 4,
        reason: Annotated[str, Field(min_length=1, max_length=256)] = "requested over MCP",
    ) -> Annotated[CallToolResult, AllocationGrant]:
        """S3: set an agent's allocation (slots, LLM tokens/min, memory). Taken from the free
        budget, then from lower-priority agents down to their fair share; may be partial."""
        request = AllocationRequest(
            agent_id=agent_id, resources=resources, priority=priority, reason=reason
        )
        reply = await bus.ask(
            request, exchange=topology.CONTROL, routing_key=ALLOCATION_REQUEST_KEY
        )
        return tool_result(expect(reply, AllocationGrant), max_chars)

    @server.tool(annotations=ADDITIVE)
    @answered
    async def vsm_coordinate_message(
        from_agent: AgentId,
        to_agent: AgentId,
        topic: Topic,
        content: Annotated[dict[str, Any], Field(default_factory=dict)],
    ) -> Annotated[CallToolResult, CoordinationReceipt]:
        """S2: deliver a note from one S1 agent to another over `vsm.coordination`."""
        request = CoordinateMessage(
            from_agent=from_agent, to_agent=to_agent, topic=topic, content=content
        )
        reply = await bus.query("coordinator", "coordinate", request, CoordinationReceipt)
        return tool_result(reply, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def explain(
        message_id: Annotated[str, Field(min_length=1, max_length=128)],
    ) -> Annotated[CallToolResult, Trace]:
        """The causal chain a message id belongs to (signal -> intervention -> policy ->
        allocation ...), root cause first, with a readable indented `text`."""
        reply = await bus.query("queen", "trace", TraceQuery(message_id=message_id), Trace)
        return tool_result(reply, max_chars)
