"""The MCP endpoint's own limits: a per-client rate, and each tool's scope.

The edge's gate (vsm.mcp_gateway.access) has already checked Host, Origin and the token
before a request gets here; a read token reaches MCP, so each tool call is checked against
the tool's annotations: a tool without `readOnlyHint` changes state and needs `operate`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from vsm.mcp_gateway.access import Tokens, bearer_token, headers_of
from vsm.mcp_gateway.rate import RateLimiter

__all__ = ["McpGate", "RateLimiter", "ToolScopes", "client_ip"]


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass
class McpGate:
    """ASGI middleware: 429 past the client's rate (a client: its token and its address).
    CORS preflights never get here: the app's CORS layer answers them."""

    app: ASGIApp
    limiter: RateLimiter
    clock: Callable[[], float] = time.monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        token = bearer_token(headers_of(scope).get("authorization")) or ""
        client = hashlib.sha256(token.encode()).hexdigest()[:16] + "@" + client_ip(scope)
        refusal = self.limiter.refusal(client, self.clock(), "MCP")
        if refusal is not None:
            await refusal.send(send)
            return
        await self.app(scope, receive, send)


@dataclass
class ToolScopes:
    """MCP server middleware: a call of a tool that changes state (no `readOnlyHint`) needs an
    operate token, judged from the request's own `Authorization` header; else a tool error
    `forbidden`. Resources, prompts and read-only tools need only what the gate let in."""

    server: MCPServer[Any]
    tokens: Tokens
    _mutating: frozenset[str] | None = None

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        name = (ctx.params or {}).get("name") if ctx.method == "tools/call" else None
        if isinstance(name, str) and name in await self.mutating() and not self.operates(ctx):
            return CallToolResult(
                content=[TextContent(type="text", text=forbidden(name))], is_error=True
            )
        return await call_next(ctx)

    async def mutating(self) -> frozenset[str]:
        if self._mutating is None:
            tools = await self.server.list_tools()
            self._mutating = frozenset(
                t.name for t in tools if not (t.annotations and t.annotations.read_only_hint)
            )
        return self._mutating

    def operates(self, ctx: ServerRequestContext[Any, Any]) -> bool:
        """Whether the request carrying this message presents an operate token."""
        headers = getattr(ctx.request, "headers", None)
        token = bearer_token(headers.get("authorization") if headers is not None else None)
        return token is not None and self.tokens.scope_of(token) == "operate"


def forbidden(tool: str) -> str:
    return f"forbidden: {tool} changes state and needs an operate token; this token may only read"
