"""MCP: Hypothesis-generated arguments for every tool, from each tool's own input schema
(hypothesis-jsonschema), valid and corrupted, through the official `mcp` SDK client over HTTP;
then wrong tokens, Origins, Hosts, methods and bodies on the raw endpoint.

A bad call must come back as a tool result with `isError` (or, at the HTTP edge, a 4xx such as
401, 403, 421); never a 5xx, a dropped connection or a crashed server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from scripts.localrun import LocalSystem
from tests.support.hostile import MCP_TOKEN, assert_all_alive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

EXAMPLES = 8
"""Generated calls per tool and kind (valid, corrupted)."""
GENERATE = settings(
    max_examples=EXAMPLES,
    database=None,
    derandomize=True,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(min_size=5_000, max_size=20_000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)
CORRUPTIONS = ("missing required", "wrong type", "extra field", "all junk")


@asynccontextmanager
async def mcp_session(url: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@st.composite
def corrupted(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = dict(draw(from_schema(schema)))
    properties = sorted(schema.get("properties", {}))
    kind = draw(st.sampled_from(CORRUPTIONS))
    required = [name for name in schema.get("required", []) if name in arguments]
    if kind == "missing required" and required:
        del arguments[draw(st.sampled_from(required))]
    elif kind == "wrong type" and properties:
        arguments[draw(st.sampled_from(properties))] = draw(JUNK)
    elif kind == "all junk":
        return draw(st.dictionaries(st.sampled_from([*properties, "x"]), JUNK, max_size=4))
    else:
        arguments["unexpected_" + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True))] = draw(JUNK)
    return arguments


def collected(strategy: st.SearchStrategy[Any]) -> list[Any]:
    """`EXAMPLES` values drawn by Hypothesis (drawn first: the calls that use them are async)."""
    values: list[Any] = []

    @GENERATE
    @given(strategy)
    def collect(value: Any) -> None:
        values.append(value)

    collect()
    return values


def generate(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Arguments for one tool: (`valid` or `corrupted`, arguments)."""
    return [("valid", a) for a in collected(from_schema(schema))] + [
        ("corrupted", a) for a in collected(corrupted(schema))
    ]


def text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_generated_arguments_for_every_tool_get_results_or_clean_errors(
    hostile_system: LocalSystem,
) -> None:
    url = f"{hostile_system.url('mcp-gateway')}/mcp"
    outcomes: Counter[str] = Counter()
    per_tool: Counter[str] = Counter()
    problems: list[str] = []
    started = time.monotonic()
    async with mcp_session(url) as session:
        tools = (await session.list_tools()).tools
        plans = {tool.name: generate(tool.input_schema) for tool in tools}
        for tool, calls in plans.items():
            for kind, arguments in calls:
                per_tool[tool] += 1
                try:
                    result = await session.call_tool(tool, arguments)
                except MCPError as error:  # a JSON-RPC error: clean, but not a tool result
                    outcomes[f"{kind}: JSON-RPC error {error.error.code}"] += 1
                    problems.append(f"{tool} {json.dumps(arguments)[:300]}: {error!r}")
                    continue
                assert isinstance(result, CallToolResult)
                outcomes[f"{kind}: {'isError' if result.is_error else 'ok'}"] += 1
                if kind == "corrupted" and not result.is_error:
                    outcomes["corrupted yet accepted (schema looser than the tool)"] += 1
        still = await session.call_tool("vsm_status", {})
    print(
        f"\nMCP fuzzing: {sum(per_tool.values())} generated calls over {len(plans)} tools in "
        f"{time.monotonic() - started:.0f} s; outcomes {dict(sorted(outcomes.items()))}"
    )
    for tool, count in sorted(per_tool.items()):
        print(f"  {count:4d}  {tool}")
    assert not problems, "\n".join(problems[:20])
    assert not still.is_error, text(still)
    assert_all_alive(hostile_system)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "fuzz", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
BEARER = {**ACCEPT, "Authorization": f"Bearer {MCP_TOKEN}"}
EDGE_CASES: list[tuple[str, str, dict[str, Any], Any, set[int]]] = [
    # (what, method, headers, JSON body or raw bytes, acceptable statuses)
    ("no token", "POST", ACCEPT, INITIALIZE, {401}),
    ("wrong token", "POST", {**ACCEPT, "Authorization": "Bearer wrong"}, INITIALIZE, {401}),
    ("Basic scheme", "POST", {**ACCEPT, "Authorization": f"Basic {MCP_TOKEN}"}, INITIALIZE, {401}),
    (
        "token and junk",
        "POST",
        {**BEARER, "Authorization": f"Bearer {MCP_TOKEN}x"},
        INITIALIZE,
        {401},
    ),
    ("empty bearer", "POST", {**ACCEPT, "Authorization": "Bearer"}, INITIALIZE, {401}),
    (
        "non-ASCII token",
        "POST",
        {**ACCEPT, "Authorization": b"Bearer \xe9\xe8\xff"},
        INITIALIZE,
        {401},
    ),
    (
        "a 16 KiB token",
        "POST",
        {**ACCEPT, "Authorization": "Bearer " + "t" * 16_384},
        INITIALIZE,
        {400, 401, 431},
    ),
    ("evil Origin", "POST", {**BEARER, "Origin": "https://evil.example"}, INITIALIZE, {403}),
    ("null Origin", "POST", {**BEARER, "Origin": "null"}, INITIALIZE, {403}),
    (
        "look-alike Origin",
        "POST",
        {**BEARER, "Origin": "http://127.0.0.1.evil.example"},
        INITIALIZE,
        {403},
    ),
    ("evil Host", "POST", {**BEARER, "Host": "evil.example"}, INITIALIZE, {421}),
    (
        "look-alike Host",
        "POST",
        {**BEARER, "Host": "localhost.evil.example:8000"},
        INITIALIZE,
        {421},
    ),
    (
        "Host with userinfo",
        "POST",
        {**BEARER, "Host": "localhost@evil.example"},
        INITIALIZE,
        {400, 421},
    ),
    ("not JSON", "POST", BEARER, b"{not json", {400}),
    ("JSON, not JSON-RPC", "POST", BEARER, {"hello": "world"}, {400}),
    ("a JSON-RPC array", "POST", BEARER, [INITIALIZE, INITIALIZE], {400}),
    (
        "a tool call without a session",
        "POST",
        BEARER,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "vsm_status"}},
        {200, 400, 404},  # the server is stateless: with the token, a call needs no session
    ),
    ("a 2 MiB body", "POST", BEARER, {**INITIALIZE, "pad": "x" * (2 * 1024 * 1024)}, {413}),
    (
        "wrong content type",
        "POST",
        {**BEARER, "Content-Type": "text/plain"},
        INITIALIZE,
        {400, 415},
    ),
    # Neither Accept nor Content-Type: the gateway's 415 (not declared JSON) comes first.
    ("no Accept", "POST", {"Authorization": f"Bearer {MCP_TOKEN}"}, INITIALIZE, {400, 406, 415}),
    ("PUT", "PUT", BEARER, INITIALIZE, {405}),
    ("DELETE without a session", "DELETE", BEARER, None, {400, 404, 405}),
    ("GET without a session", "GET", BEARER, None, {200, 400, 404, 405, 406}),  # stateless
]
KNOWN: dict[tuple[str, int], str] = {}
"""(case, status) -> why: answers found by this test and reported to the gateway's owner."""


async def send(
    http: httpx.AsyncClient, method: str, headers: dict[str, Any], body: Any
) -> httpx.Response:
    """One request; its status and the start of its body (a stream is not read to its end)."""
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    async with asyncio.timeout(20):
        request = http.build_request(method, "/mcp", headers=headers, content=content)
        response = await http.send(request, stream=True)
        try:
            async for chunk in response.aiter_bytes():
                response._content = chunk[:2000]
                break
            else:
                response._content = b""
        finally:
            await response.aclose()
        return response


async def test_wrong_tokens_origins_hosts_methods_and_bodies_get_4xx(
    hostile_system: LocalSystem,
) -> None:
    statuses: Counter[int] = Counter()
    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=hostile_system.url("mcp-gateway"), timeout=30) as http:
        for what, method, headers, body, acceptable in EDGE_CASES:
            try:
                response = await send(http, method, headers, body)
            except (httpx.HTTPError, TimeoutError) as error:
                wrong.append(f"{what}: no answer ({error!r})")
                continue
            statuses[response.status_code] += 1
            if (known := KNOWN.get((what, response.status_code))) is not None:
                print(f"\n  KNOWN: {what} -> {response.status_code}: {known}")
            elif response.status_code not in acceptable:
                wrong.append(f"{what}: {response.status_code} {response.text[:200]}")
        generated = await generated_origins_and_hosts(http, statuses, wrong)
    print(
        f"\nMCP edge: {len(EDGE_CASES)} hand-written and {generated} generated requests; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert not wrong, "\n".join(wrong)
    assert_all_alive(hostile_system)


HOSTISH = st.from_regex(r"[a-z0-9.\-]{1,30}(:[0-9]{1,5})?", fullmatch=True)


def foreign(value: str) -> bool:
    """Not one of the names the gateway answers by default (loopback, the chart's names)."""
    name = value.split(":", 1)[0]
    return name not in {"127.0.0.1", "localhost"} and not name.startswith(
        ("mcp-gateway", "vsm-mcp-gateway")
    )


async def generated_origins_and_hosts(
    http: httpx.AsyncClient, statuses: Counter[int], wrong: list[str]
) -> int:
    cases = collected(st.tuples(st.sampled_from(["Origin", "Host"]), HOSTISH.filter(foreign)))
    for header, name in cases:
        value = f"http://{name}" if header == "Origin" else name
        response = await send(http, "POST", {**BEARER, header: value}, INITIALIZE)
        statuses[response.status_code] += 1
        if not 400 <= response.status_code < 500:
            wrong.append(f"{header}: {value}: {response.status_code} {response.text[:200]}")
    return len(cases)
