"""MCP at /mcp, driven by the official SDK client over HTTP against the running system.

Every tool answers from the system that owns it; bad calls come back as clean errors and the
server stays up. (The S2/S3/recursion/trace tools are exercised in test_closed_loop.py.)
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from scripts.localrun import LocalSystem
from tests.support.polling import eventually
from tests.support.probe import Probe, open_probe
from tests.support.system import launch, shut_down
from tests.support.tokens import OPERATE_TOKEN, READ_TOKEN, bearer
from tests.support.tokens import mcp_session as sdk_session
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(24)
MAX_REQUEST_BYTES = 64 * 1024
TOOLS = {
    "vsm_status",
    "vsm_check_viability",
    "vsm_scan_environment",
    "vsm_synthesize_policy",
    "synthesize_policy",
    "vsm_trigger_adaptation",
    "analyze_variety",
    "check_meta_system_need",
    "vsm_spawn_meta_system",
    "vsm_allocate_resources",
    "vsm_coordinate_message",
    "algedonic_signal",
    "queen_decision",
    "spawn_agent",
    "list_agents",
    "list_agent_types",
    "agent_command",
    "terminate_agent",
    "audit_agent",
    "explain",
    "vsm_approvals",
    "vsm_decide_approval",
}


@pytest.fixture(scope="module")
def mcp_system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        MCP_AUTH_TOKEN=TOKEN,
        MCP_MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
        MCP_MAX_RESULT_CHARS="20000",
        MCP_RATE_LIMIT="10000",
    )
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
def mcp_url(mcp_system: LocalSystem) -> str:
    return f"{mcp_system.url('mcp-gateway')}/mcp"


@pytest.fixture
async def mcp_probe(amqp_url: str, mcp_system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, mcp_system.env["VSM_NAMESPACE"]) as client:
        yield client


def mcp_session(url: str, token: str = TOKEN) -> AbstractAsyncContextManager[ClientSession]:
    """An initialized session of the official SDK client, with this module's token (given to
    the gateway as `MCP_AUTH_TOKEN`, which stays an operate token)."""
    return sdk_session(url, token)


async def call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    async with mcp_session(url) as session:
        return await session.call_tool(tool, arguments or {})


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def next_body(probe: Probe, queue: str, wanted: type[Any]) -> Any:
    while True:
        message = await probe.get(queue, timeout=15)
        envelope = Envelope.model_validate_json(message.body)
        if isinstance(envelope.data, wanted):
            return envelope


# Protocol ----------------------------------------------------------------------------------


async def test_initialize_lists_every_tool_with_its_schema(mcp_url: str) -> None:
    async with mcp_session(mcp_url) as session:
        tools = (await session.list_tools()).tools
        prompts = (await session.list_prompts()).prompts
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert tool.description
        assert tool.input_schema["type"] == "object"
    signal = next(t for t in tools if t.name == "algedonic_signal")
    assert signal.input_schema["required"] == ["kind", "intensity"]
    assert signal.input_schema["properties"]["intensity"]["maximum"] == 1.0
    assert signal.output_schema is not None
    assert {p.name for p in prompts} == {"diagnose_viability", "respond_to_pain"}


async def test_resources_read_from_the_owning_systems(mcp_url: str) -> None:
    async with mcp_session(mcp_url) as session:
        listed = {str(r.uri) for r in (await session.list_resources()).resources}
        contents = {
            uri: json.loads((await session.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]
            for uri in ("vsm://status", "vsm://policies/current", "vsm://agents")
        }
    assert listed == {"vsm://status", "vsm://policies/current", "vsm://agents"}
    assert len(contents["vsm://status"]["components"]) == 7
    assert contents["vsm://policies/current"]["vsm_id"] == "root"
    assert isinstance(contents["vsm://agents"]["agents"], list)


async def test_a_prompt_renders_with_its_argument(mcp_url: str) -> None:
    async with mcp_session(mcp_url) as session:
        prompt = await session.get_prompt("respond_to_pain", {"reason": "error_burst"})
    assert "error_burst" in prompt.messages[0].content.text  # type: ignore[union-attr]


# Tools of S5 and S4 ------------------------------------------------------------------------


async def test_status_and_viability_come_from_queen(mcp_url: str) -> None:
    status = data(await call(mcp_url, "vsm_status"))
    assert next(c["service"] for c in status["components"]) == "queen"
    gateway = next(c for c in status["components"] if c["service"] == "mcp-gateway")
    assert gateway["details"]["mcp"] == "enabled"
    state = data(await call(mcp_url, "vsm_check_viability", {"vsm_id": "root"}))
    assert state["vsm_id"] == "root"
    assert {"score", "coverage", "terms"} <= set(state["viability"])


async def test_s4_tools_scan_variety_and_meta_system_need(mcp_url: str) -> None:
    scan = data(await call(mcp_url, "vsm_scan_environment", {"reason": "mcp test"}))
    assert scan["trigger"] == "requested"
    assert scan["reason"] == "mcp test"
    variety = data(await call(mcp_url, "analyze_variety"))
    assert {"entropy_bits", "distinct_types", "events"} <= set(variety)
    need = data(await call(mcp_url, "check_meta_system_need"))
    assert isinstance(need["recommended"], bool)
    assert set(need["factors"]) == set(need["weights"])


@pytest.mark.parametrize("tool", ["vsm_synthesize_policy", "synthesize_policy"])
async def test_synthesis_applies_a_policy_that_the_policies_resource_shows(
    mcp_url: str, tool: str
) -> None:
    result = data(await call(mcp_url, tool, {"anomaly_type": "overload", "severity": 0.8}))
    applied = result["applied"]
    assert applied["source"] == "rules"
    assert result["llm_outcome"] == "not_configured"
    async with mcp_session(mcp_url) as session:
        read = await session.read_resource("vsm://policies/current")
    current = json.loads(read.contents[0].text)  # type: ignore[union-attr]
    latest = {p["policy_type"]: p["latest_version"] for p in current["policies"]}
    assert latest[applied["policy_type"]] >= applied["version"]


async def test_queen_decision_gives_reasons_and_steps(mcp_url: str) -> None:
    decision = data(await call(mcp_url, "queen_decision", {"decision_type": "intervention"}))
    assert decision["decision_type"] == "intervention"
    assert decision["reasoning"]
    assert decision["steps"]


async def test_algedonic_signal_is_published_on_the_algedonic_exchange(
    mcp_url: str, mcp_probe: Probe
) -> None:
    queue = await mcp_probe.bind_queue(
        f"mcp-test-algedonic-{secrets.token_hex(3)}", "vsm.algedonic"
    )
    sent = data(
        await call(
            mcp_url,
            "algedonic_signal",
            {"kind": "pain", "intensity": 0.3, "reason": "mcp_test", "context": {"k": 1}},
        )
    )
    envelope = await next_body(mcp_probe, queue, AlgedonicSignal)
    assert envelope.id == sent["message_id"]
    assert envelope.data.origin == "mcp-gateway/mcp"
    assert envelope.data.reason == "mcp_test"
    assert envelope.data.context == {"k": 1}


async def test_trigger_adaptation_asks_s4_which_proposes(mcp_url: str, mcp_probe: Probe) -> None:
    queue = await mcp_probe.bind_queue(
        f"mcp-test-adaptation-{secrets.token_hex(3)}", topology.INTELLIGENCE.name, "adaptation.#"
    )
    sent = data(
        await call(mcp_url, "vsm_trigger_adaptation", {"trigger": "overload", "pain_level": 0.8})
    )
    request = await next_body(mcp_probe, queue, AdaptationRequest)
    assert request.id == sent["message_id"]
    assert request.data.intervention_id == sent["intervention_id"]
    proposal = await next_body(mcp_probe, queue, AdaptationProposal)
    assert proposal.data.request_id == sent["intervention_id"]
    assert proposal.causation_id == request.id


# Tools of S1 -------------------------------------------------------------------------------


async def test_agent_lifecycle_spawn_list_command_audit_terminate(mcp_url: str) -> None:
    agent = data(await call(mcp_url, "spawn_agent", {"agent_type": "worker", "config": {}}))
    agent_id = agent["agent_id"]
    listed = data(await call(mcp_url, "list_agents", {"agent_type": "worker"}))
    assert agent_id in {a["agent_id"] for a in listed["agents"]}
    result = data(
        await call(
            mcp_url,
            "agent_command",
            {"agent_id": agent_id, "command_type": "process_data", "data": {"data": [1, 2]}},
        )
    )
    assert result["status"] == "ok"
    assert result["agent_id"] == agent_id
    assert "checksum" in result["result"]
    audit = data(
        await call(mcp_url, "audit_agent", {"agent_id": agent_id, "audit_type": "metrics_only"})
    )
    assert audit["agent_id"] == agent_id
    gone = data(await call(mcp_url, "terminate_agent", {"agent_id": agent_id}))
    assert gone["state"] == "terminated"
    listed = data(await call(mcp_url, "list_agents"))
    assert agent_id not in {a["agent_id"] for a in listed["agents"]}


async def test_agent_types_list_each_commands_input_schema(mcp_url: str) -> None:
    types = {t["agent_type"]: t for t in data(await call(mcp_url, "list_agent_types"))["types"]}
    assert set(types) == {"worker", "llm_worker", "sensor", "api"}
    call_schema = types["api"]["commands"]["call"]["input_schema"]
    assert call_schema["required"] == ["url"]
    assert "status_code" in types["api"]["commands"]["call"]["output_schema"]["properties"]


async def test_commanding_an_unknown_agent_is_a_tool_error(mcp_url: str) -> None:
    result = await call(
        mcp_url, "agent_command", {"agent_id": "no-such-agent", "command_type": "process_data"}
    )
    assert result.is_error
    assert "not_found" in text(result)


# Placeholders (issue 5) --------------------------------------------------------------------


async def test_spawn_a_meta_system_and_explain_a_signal(mcp_url: str) -> None:
    spawned = data(
        await call(
            mcp_url,
            "vsm_spawn_meta_system",
            {
                "name": "mcp-child",
                "purpose": "tried from MCP",
                "budget": {"concurrency_slots": 2},
            },
        )
    )
    assert (spawned["vsm_id"], spawned["parent"]) == ("root/mcp-child", "root")
    again = await call(
        mcp_url,
        "vsm_spawn_meta_system",
        {"name": "mcp-child", "purpose": "twice", "budget": {"concurrency_slots": 2}},
    )
    assert again.is_error
    assert "meta_system_exists" in text(again)

    signal = data(await call(mcp_url, "algedonic_signal", {"kind": "pain", "intensity": 0.2}))
    signal_id = signal["message_id"]

    async def explained() -> dict[str, Any] | None:
        result = await call(mcp_url, "explain", {"message_id": signal_id})
        return None if result.is_error else data(result)

    trace = await eventually(explained, what="the signal on the trail")
    assert trace["chain"][0]["id"] == signal_id
    assert "pain 0.20" in trace["text"]


async def test_allocation_and_coordination_refuse_unknown_agents(mcp_url: str) -> None:
    allocation = await call(
        mcp_url,
        "vsm_allocate_resources",
        {"agent_id": "worker-nobody", "resources": {"concurrency_slots": 2}},
    )
    assert allocation.is_error
    assert "unknown_agent" in text(allocation)
    note = await call(
        mcp_url,
        "vsm_coordinate_message",
        {"from_agent": "worker-nobody", "to_agent": "worker-noone", "topic": "handoff"},
    )
    assert note.is_error
    assert "unknown_agent" in text(note)


# Bad calls ---------------------------------------------------------------------------------


async def test_bad_calls_are_clean_errors_and_the_server_stays_up(mcp_url: str) -> None:
    async with mcp_session(mcp_url) as session:
        wrong_type = await session.call_tool(
            "algedonic_signal", {"kind": "pain", "intensity": "very much"}
        )
        out_of_range = await session.call_tool("algedonic_signal", {"kind": "joy", "intensity": 2})
        unknown = await session.call_tool("no_such_tool", {})
        too_long = await session.call_tool("explain", {"message_id": "m" * 10_000})
        still_up = await session.call_tool("vsm_status", {})
    assert wrong_type.is_error
    assert "intensity" in text(wrong_type)
    assert out_of_range.is_error
    assert "kind" in text(out_of_range)
    assert "intensity" in text(out_of_range)
    assert unknown.is_error
    assert "no_such_tool" in text(unknown)
    assert too_long.is_error
    assert "message_id" in text(too_long)
    assert not still_up.is_error


def leaves(group: BaseExceptionGroup[Any]) -> Iterator[Any]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from leaves(error)
        else:
            yield error


async def test_an_oversized_argument_is_refused_and_the_server_stays_up(mcp_url: str) -> None:
    huge = {"kind": "pain", "intensity": 0.1, "context": {"blob": "x" * (2 * MAX_REQUEST_BYTES)}}
    refused: list[MCPError] = []
    try:
        async with mcp_session(mcp_url) as session:
            await session.call_tool("algedonic_signal", huge)
    except* MCPError as errors:  # the SDK reports the HTTP 413 as a JSON-RPC error
        refused.extend(leaves(errors))
    assert refused, "an oversized call must fail"
    assert not (await call(mcp_url, "vsm_status")).is_error


# HTTP edge: token, host and origin, size, CORS, REST beside MCP ----------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
async def raw(mcp_system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mcp_system.url("mcp-gateway"), timeout=10) as client:
        yield client


async def test_without_a_valid_token_mcp_answers_401_with_www_authenticate(
    raw: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await raw.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"


async def test_with_the_token_raw_initialize_succeeds(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "vsm"


async def test_a_bad_origin_gets_403_and_a_bad_host_421(raw: httpx.AsyncClient) -> None:
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    evil = await raw.post(
        "/mcp", json=INITIALIZE, headers={**auth, "Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    rebinding = await raw.post("/mcp", json=INITIALIZE, headers={**auth, "Host": "evil.example"})
    assert rebinding.status_code == 421
    in_cluster = await raw.post(
        "/mcp", json=INITIALIZE, headers={**auth, "Host": "mcp-gateway:8000"}
    )
    assert in_cluster.status_code == 200


async def test_an_oversized_body_gets_413(raw: httpx.AsyncClient) -> None:
    body = json.dumps({**INITIALIZE, "padding": "x" * (MAX_REQUEST_BYTES + 1)})
    response = await raw.post(
        "/mcp",
        content=body,
        headers={
            **MCP_HEADERS,
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413


async def test_cors_preflight_from_an_allowed_browser_origin(raw: httpx.AsyncClient) -> None:
    origin = "http://localhost:6274"
    response = await raw.options(
        "/mcp",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == origin
    refused = await raw.options(
        "/mcp",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_rest_and_openapi_stay_on_the_same_port_without_mcp(raw: httpx.AsyncClient) -> None:
    read = bearer(READ_TOKEN)
    schema = (await raw.get("/schema/openapi.json", headers=read)).json()
    assert "/api/vsm/status" in schema["paths"]
    assert not any(path.startswith("/mcp") for path in schema["paths"])
    assert (await raw.get("/api/vsm/status", headers=read)).status_code == 200


# Scopes: a read token reads, an operate token (MCP_AUTH_TOKEN here) also changes state -----


async def tools_by_scope(url: str) -> tuple[set[str], set[str]]:
    """(read-only tools, tools that change state), by the tools' own annotations."""
    async with mcp_session(url, READ_TOKEN) as session:
        tools = (await session.list_tools()).tools
    reads = {t.name for t in tools if t.annotations and t.annotations.read_only_hint}
    return reads, {t.name for t in tools} - reads


async def test_a_read_token_reads_resources_and_read_only_tools(mcp_url: str) -> None:
    reads, _ = await tools_by_scope(mcp_url)
    assert {"vsm_status", "list_agents", "explain"} <= reads
    async with mcp_session(mcp_url, READ_TOKEN) as session:
        status = await session.read_resource("vsm://status")
        assert json.loads(status.contents[0].text)["vsm_id"] == "root"  # type: ignore[union-attr]
        assert data(await session.call_tool("vsm_status", {}))["vsm_id"] == "root"
        for tool in sorted(reads):  # whatever the arguments, never refused for its scope
            assert not text(await session.call_tool(tool, {})).startswith("forbidden")


async def test_a_read_token_is_refused_every_tool_that_changes_state(mcp_url: str) -> None:
    _, changes = await tools_by_scope(mcp_url)
    assert {
        "spawn_agent",
        "terminate_agent",
        "algedonic_signal",
        "vsm_synthesize_policy",
    } <= changes
    async with mcp_session(mcp_url, READ_TOKEN) as session:
        for tool in sorted(changes):
            refused = await session.call_tool(tool, {"agent_type": "worker"})
            assert refused.is_error, tool
            assert text(refused) == (
                f"forbidden: {tool} changes state and needs an operate token; "
                "this token may only read"
            )
    async with mcp_session(mcp_url, OPERATE_TOKEN) as session:  # the tests' operate token
        allowed = await session.call_tool("terminate_agent", {"agent_id": "worker-00000000"})
    assert allowed.is_error
    assert "agent_not_found" in text(allowed)  # past the scope check, refused by S1
