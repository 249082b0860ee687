"""MCP tools whose owning system comes with issue 5 (S3, S2, recursion, causal trace).

Their input schema is final; each answers the tool error `not_available: <what is missing>`
rather than a made-up result.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from vsm.mcp_gateway.mcp_arguments import READ_ONLY, AgentId, VsmIdArg
from vsm.mcp_gateway.mcp_results import not_available


def register(server: MCPServer[Any]) -> None:
    """Tools whose owning system is not built yet: their schema is final, their answer says so."""

    @server.tool()
    async def vsm_spawn_meta_system(
        name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")],
        purpose: Annotated[str, Field(min_length=1, max_length=1024)],
        parent_vsm_id: VsmIdArg = None,
    ) -> CallToolResult:
        """Spawn a child viable system (meta-VSM) under `parent_vsm_id` (not deployed yet)."""
        not_available("meta-system spawning (vsm.recursive) is not deployed in this version")

    @server.tool()
    async def vsm_allocate_resources(
        target: Annotated[str, Field(min_length=1, max_length=128)],
        amount: Annotated[float, Field(gt=0, allow_inf_nan=False)],
        priority: Annotated[int, Field(ge=0, le=9)] = 4,
    ) -> CallToolResult:
        """S3: allocate resources to an S1 unit or agent type (not deployed yet)."""
        not_available("S3 resource allocation is not deployed in this version")

    @server.tool()
    async def vsm_coordinate_message(
        agent_ids: Annotated[list[AgentId], Field(min_length=1, max_length=64)],
        message: Annotated[dict[str, Any], Field()],
    ) -> CallToolResult:
        """S2: coordinate a message across S1 agents with anti-oscillation (not deployed yet)."""
        not_available("S2 coordination is not deployed in this version")

    @server.tool(annotations=READ_ONLY)
    async def explain(
        message_id: Annotated[str, Field(min_length=1, max_length=128)],
    ) -> CallToolResult:
        """The causal chain of a message id, oldest cause first (not deployed yet)."""
        not_available("the causal-chain trace is not deployed in this version")
