"""Tool results: capped with a marker, failures of the owning system as tool errors."""

from __future__ import annotations

import json
from typing import Annotated, Any

from faststream.rabbit import RabbitBroker
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from vsm.contract.errors import ErrorReply
from vsm.kit.bus import Bus, NotRoutable, RequestFailed
from vsm.kit.names import Namespace
from vsm.kit.rpc import RequestTimeout
from vsm.kit.telemetry import create_telemetry
from vsm.mcp_gateway.mcp import tools as mcp_tools
from vsm.mcp_gateway.mcp.results import capped, describe_failure, tool_result


class Blob(BaseModel):
    text: str


def first_text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def test_capped_keeps_short_text_and_marks_cut_text() -> None:
    assert capped("short", 100) == ("short", False)
    text, cut = capped("x" * 1000, 100)
    assert cut
    assert 90 <= len(text) <= 100
    assert text.endswith("of 1000 characters]")


def test_a_result_within_the_cap_is_structured_and_text_alike() -> None:
    result = tool_result(Blob(text="hi"), 1000)
    assert not result.is_error
    assert result.structured_content == {"text": "hi"}
    assert json.loads(first_text(result)) == {"text": "hi"}


def test_a_result_over_the_cap_is_an_error_with_the_truncation_marker() -> None:
    result = tool_result(Blob(text="y" * 5000), 500)
    assert result.is_error
    assert result.structured_content is None
    assert 490 <= len(first_text(result)) <= 500
    assert "[truncated: showed" in first_text(result)


def test_failures_of_the_owning_system_name_their_code() -> None:
    failed = RequestFailed(ErrorReply(code="agent_not_found", message="no agent x"))
    assert describe_failure(failed) == "agent_not_found: no agent x"
    assert describe_failure(RequestTimeout("no reply")) == "timeout: no reply"
    assert describe_failure(NotRoutable("no queue")) == "agent_not_found: no queue"
    assert describe_failure(ValueError("bug")) is None


def server_with_tools() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("vsm-test")
    broker = RabbitBroker("amqp://127.0.0.1:1/")  # never connected: these tools don't ask
    bus = Bus(
        broker,
        service="mcp-test",
        namespace=Namespace(),
        vsm_id="root",
        telemetry=create_telemetry("mcp-test"),
        request_timeout_s=1.0,
    )
    mcp_tools.register(server, bus, max_chars=300)

    @server.tool()
    async def big() -> Annotated[CallToolResult, Blob]:
        return tool_result(Blob(text="z" * 1000), 300)

    return server


async def test_an_oversized_result_reaches_the_client_as_a_marked_error() -> None:
    async with Client(server_with_tools()) as client:
        result = await client.call_tool("big", {})
    assert result.is_error
    assert "[truncated: showed" in first_text(result)


async def test_negative_or_absurd_amounts_are_refused_before_anything_is_sent() -> None:
    async with Client(server_with_tools()) as client:
        negative = await client.call_tool(
            "vsm_allocate_resources",
            {"agent_id": "w-1", "resources": {"concurrency_slots": -1}},
        )
        absurd = await client.call_tool(
            "vsm_spawn_meta_system",
            {"name": "x", "purpose": "p", "budget": {"memory_mb": 10**12}},
        )
    assert negative.is_error
    assert "concurrency_slots" in first_text(negative)
    assert absurd.is_error
    assert "memory_mb" in first_text(absurd)


async def test_every_tool_publishes_an_input_and_an_output_schema() -> None:
    async with Client(server_with_tools()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert len(tools) == 23  # the issue's 19, list_agent_types, approvals' two, the test's
    for name, tool in tools.items():
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None, name
    agent_id = tools["agent_command"].input_schema["properties"]["agent_id"]
    assert agent_id["pattern"] == "^[a-z0-9][a-z0-9-]{0,63}$"
