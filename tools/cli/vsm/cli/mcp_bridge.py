"""`vsm mcp`: a stdio MCP server that forwards every request to the gateway's `/mcp`.

Desktop clients start their MCP servers as processes and speak to them over stdio; this
bridge lets them reach the gateway with nothing but the CLI. Tools, resources and prompts
are listed and called upstream over Streamable HTTP with the user's token, and what the
gateway answers (results, tool errors, protocol errors) comes back as it was. A gateway that
cannot be reached, or that refuses the token, is an MCP error naming it, never the end of
the bridge: the next request tries again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from vsm.cli.settings import Target

Result = TypeVar("Result", bound=types.Result)
UNREACHABLE = types.CONNECTION_CLOSED
"""JSON-RPC code of the error a client gets when no gateway answers."""
REFUSED = types.INVALID_REQUEST
"""JSON-RPC code when the gateway's edge refuses the request (token, scope, host, rate)."""
TIMEOUT = httpx2.Timeout(10.0, read=330.0)
"""An agent command may take 300 s upstream; the gateway sets the real deadline."""


def error_response(request: httpx2.Request, code: int, message: str) -> httpx2.Response:
    """A JSON-RPC error answering `request`, in the shape the SDK's transport surfaces."""
    try:
        sent = json.loads(request.content)
    except ValueError:
        sent = None
    ident = sent.get("id") if isinstance(sent, dict) else None
    body = {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
    return httpx2.Response(502, json=body, request=request)


def refusal(response: httpx2.Response) -> str | None:
    """The gateway's own refusal (`{"error", "message"}`, not JSON-RPC) as one line."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and "jsonrpc" in body:
        return None
    if isinstance(body, dict) and "error" in body:
        return f"{response.status_code} {body['error']}: {body.get('message', '')}".rstrip(": ")
    return f"{response.status_code} {response.reason_phrase}"


class GatewayTransport(httpx2.AsyncBaseTransport):
    """HTTP to the gateway where failures of a POST become JSON-RPC errors of that request:
    the SDK's transport would otherwise end the whole session on a refused connection, and
    report a refused token only as "Server returned an error response"."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST":
            return await self.http.handle_async_request(request)
        try:
            response = await self.http.handle_async_request(request)
        except httpx2.TimeoutException:
            problem = f"the gateway at {self.endpoint} did not answer in time"
            return error_response(request, UNREACHABLE, problem)
        except httpx2.TransportError as error:
            reason = str(error) or type(error).__name__
            problem = f"cannot reach the gateway at {self.endpoint}: {reason}"
            return error_response(request, UNREACHABLE, problem)
        if response.status_code < 400:
            return response
        await response.aread()
        refused = refusal(response)
        await response.aclose()
        if refused is None:
            return response
        return error_response(request, REFUSED, f"the gateway at {self.endpoint}: {refused}")

    async def aclose(self) -> None:
        await self.http.aclose()


class Upstream:
    """One MCP client session with the gateway, initialized on first use and again after a
    failed attempt (the gateway is stateless: nothing is lost between requests)."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.ready: types.InitializeResult | None = None
        self.lock = anyio.Lock()

    async def initialize(self) -> types.InitializeResult:
        async with self.lock:
            if self.ready is None:
                self.ready = await self.session.initialize()
            return self.ready

    async def forward(self, request: types.Request[Any, Any], result: type[Result]) -> Result:
        await self.initialize()
        return await self.session.send_request(request, result)


@asynccontextmanager
async def upstream(target: Target) -> AsyncIterator[Upstream]:
    endpoint = f"{target.url}/mcp"
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    transport = GatewayTransport(endpoint)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=TIMEOUT, transport=transport) as http,
        streamable_http_client(endpoint, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        yield Upstream(session)


def forwarding(
    gateway: Upstream, request: type[types.Request[Any, Any]], result: type[types.Result]
) -> Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]:
    """A handler that sends its request on to the gateway, params as they came."""

    async def handle(_: ServerRequestContext[Any], params: Any) -> Any:
        return await gateway.forward(request(params=params), result)

    return handle


def bridge(gateway: Upstream, instructions: str | None) -> Server[Any]:
    """Tools, resources and prompts: every request of theirs, forwarded."""
    return Server(
        "vsm",
        version=version("vsm-cli"),
        instructions=instructions,
        on_list_tools=forwarding(gateway, types.ListToolsRequest, types.ListToolsResult),
        on_call_tool=forwarding(gateway, types.CallToolRequest, types.CallToolResult),
        on_list_resources=forwarding(
            gateway, types.ListResourcesRequest, types.ListResourcesResult
        ),
        on_list_resource_templates=forwarding(
            gateway, types.ListResourceTemplatesRequest, types.ListResourceTemplatesResult
        ),
        on_read_resource=forwarding(gateway, types.ReadResourceRequest, types.ReadResourceResult),
        on_list_prompts=forwarding(gateway, types.ListPromptsRequest, types.ListPromptsResult),
        on_get_prompt=forwarding(gateway, types.GetPromptRequest, types.GetPromptResult),
    )


def note(line: str) -> None:
    """stdout carries the protocol: everything for people goes to stderr (clients log it)."""
    print(f"vsm mcp: {line}", file=sys.stderr, flush=True)


async def serve(target: Target) -> None:
    """Bridge stdin/stdout to the gateway until the client closes stdin."""
    async with upstream(target) as gateway:
        note(f"forwarding to {target.url}/mcp" + ("" if target.token else " without a token"))
        instructions = None
        try:
            instructions = (await gateway.initialize()).instructions
        except MCPError as error:
            note(f"{error.message}; each request tries again")
        server = bridge(gateway, instructions)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
