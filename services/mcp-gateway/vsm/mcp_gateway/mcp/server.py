"""The MCP server (official SDK, Streamable HTTP) mounted at `/mcp` beside the REST API.

Stateless JSON mode: every request stands alone, so any gateway replica can answer it
without sticky sessions. The SDK's session manager runs inside the service's lifespan.
"""

from __future__ import annotations

import json
from typing import Any

from litestar.types import ASGIApp
from mcp.server.mcpserver import MCPServer

from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.operations import AgentList, ListAgents
from vsm.contract.policy import PolicyList, PolicyListQuery
from vsm.kit.runtime import Runtime
from vsm.kit.version import VERSION
from vsm.mcp_gateway.access import Tokens
from vsm.mcp_gateway.crosssite import transport_security
from vsm.mcp_gateway.mcp import tools
from vsm.mcp_gateway.mcp.security import McpGate, RateLimiter, ToolScopes
from vsm.mcp_gateway.settings import Settings

INSTRUCTIONS = (
    "vsm runs a Viable System Model: S1 agents, S4 intelligence, S5 policy and identity. "
    "Read vsm://status first; every tool is one message to the system that owns it."
)


def create_mcp_server(runtime: Runtime, max_chars: int) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("vsm", instructions=INSTRUCTIONS, version=VERSION)
    tools.register(server, runtime.bus, max_chars)
    _register_resources(server, runtime)
    _register_prompts(server)
    return server


def _register_resources(server: MCPServer[Any], runtime: Runtime) -> None:
    bus = runtime.bus

    @server.resource("vsm://status", name="status", mime_type="application/json")
    async def status() -> str:
        """Every system and gateway with its state, as S5 sees it."""
        return (await bus.query("queen", "status", StatusQuery(), SystemStatus)).model_dump_json()

    @server.resource("vsm://policies/current", name="policies", mime_type="application/json")
    async def policies() -> str:
        """The latest version of every policy type of the root viable system."""
        reply = await bus.query("queen", "policy.list", PolicyListQuery(), PolicyList)
        return reply.model_dump_json()

    @server.resource("vsm://agents", name="agents", mime_type="application/json")
    async def agents() -> str:
        """The running S1 agents."""
        return (await bus.query("operations", "list", ListAgents(), AgentList)).model_dump_json()


def _register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt()
    def diagnose_viability() -> str:
        """Walk through why the system is (or is not) viable, from measured terms."""
        return (
            "Read vsm://status, then call vsm_check_viability. For each viability term say "
            "what was measured and whether it is healthy; name unknown terms as unknown. "
            "End with the one action most likely to restore viability and the tool for it."
        )

    @server.prompt()
    def respond_to_pain(reason: str, intensity: str = "0.7") -> str:
        """Report trouble as pain and follow what S5 does about it."""
        return (
            f"Raise pain with algedonic_signal (reason {json.dumps(reason)}, intensity "
            f"{intensity}). Then call vsm_check_viability until an intervention appears, "
            "and read vsm://policies/current to see which policy S5 changed."
        )


def serve(runtime: Runtime, settings: Settings, tokens: Tokens) -> tuple[Any, ASGIApp]:
    """The server's session manager (to run while it serves) and the ASGI app of `/mcp`
    behind its rate limit (`McpGate`). Each tool call needs its own scope (`ToolScopes`)."""
    server = create_mcp_server(runtime, settings.mcp_max_result_chars)
    server.middleware.append(ToolScopes(server, tokens))
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        max_request_body_size=settings.mcp_max_request_bytes,
        transport_security=transport_security(settings),
    )
    manager = server.session_manager
    handle: Any = manager.handle_request  # Starlette's ASGI types, the same protocol
    return manager, McpGate(handle, RateLimiter(settings.mcp_rate_limit))
