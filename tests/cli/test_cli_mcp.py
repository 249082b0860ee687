"""`vsm mcp`: the gateway's MCP server over stdio, as a desktop client starts it.

The official SDK's stdio client spawns `vsm mcp` as a process and talks to it; behind it is
the real gateway of the CLI tests' system on a real broker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from scripts.localrun import TOKEN_FILE, LocalSystem, connecting
from tests.cli.test_cli_commands import closed_port
from tests.support.cli import VSM
from tests.support.tokens import OPERATE_TOKEN, READ_TOKEN, mcp_session

pytestmark = pytest.mark.integration

READS = {
    "vsm_status",
    "vsm_check_viability",
    "analyze_variety",
    "check_meta_system_need",
    "queen_decision",  # advice: nothing is applied
    "list_agents",
    "list_agent_types",
    "audit_agent",  # S3* reads the agent's state through its queue
    "explain",
    "vsm_approvals",
}
"""The tools that change nothing (`readOnlyHint`: a read token may call them)."""
CHANGES = {
    "vsm_scan_environment": (False, False),  # publishes its result; rules may raise alerts
    "vsm_synthesize_policy": (True, False),  # a new version replaces the policy in force
    "synthesize_policy": (True, False),
    "vsm_trigger_adaptation": (False, False),
    "algedonic_signal": (False, False),  # each signal adds to pain or pleasure
    "spawn_agent": (False, False),
    "agent_command": (True, False),  # whatever the command does (an api agent calls out)
    "terminate_agent": (True, True),  # gone for good; ending it again changes nothing more
    "vsm_spawn_meta_system": (False, False),
    "vsm_allocate_resources": (True, False),  # may take slots from lower-priority agents
    "vsm_coordinate_message": (False, False),
    "vsm_decide_approval": (True, False),  # an approved policy replaces the one in force
}
"""The tools that change state: (`destructiveHint`, `idempotentHint`) each."""


def bridge(
    url: str | None, token: str | None, home: Path, cwd: Path | None = None
) -> StdioServerParameters:
    """`vsm [--url URL] mcp` with the token in VSM_TOKEN (none: as resolved otherwise) and a
    config directory of its own."""
    env = {"XDG_CONFIG_HOME": str(home)} | ({"VSM_TOKEN": token} if token else {})
    args = ["--url", url, "mcp"] if url else ["mcp"]
    return StdioServerParameters(command=VSM, args=args, env=env, cwd=cwd)


@asynccontextmanager
async def bridged(
    server: StdioServerParameters, errlog: Path | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized session of the SDK's stdio client with the spawned server."""
    with (errlog or Path("/dev/null")).open("w") as log:
        async with (
            stdio_client(server, errlog=log) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_tools_resources_and_prompts_pass_through(url: str, tmp_path: Path) -> None:
    async with bridged(bridge(url, OPERATE_TOKEN, tmp_path)) as desktop:
        tools = (await desktop.list_tools()).tools
        status = await desktop.call_tool("vsm_status", {})
        resources = (await desktop.list_resources()).resources
        read = await desktop.read_resource("vsm://status")
        prompts = (await desktop.list_prompts()).prompts
        prompt = await desktop.get_prompt("respond_to_pain", {"reason": "disk_full"})
        refused = await desktop.call_tool("terminate_agent", {"agent_id": "worker-00000000"})
        with pytest.raises(MCPError) as bridged_error:
            await desktop.read_resource("vsm://no-such-resource")
    async with mcp_session(f"{url}/mcp") as direct:
        assert (await direct.list_tools()).tools == tools  # schemas, annotations and all
        with pytest.raises(MCPError) as direct_error:
            await direct.read_resource("vsm://no-such-resource")

    assert not status.is_error
    assert status.structured_content is not None
    assert status.structured_content["vsm_id"] == "root"
    assert {"queen", "mcp-gateway"} <= {
        c["service"] for c in status.structured_content["components"]
    }
    assert {str(r.uri) for r in resources} == {
        "vsm://status",
        "vsm://policies/current",
        "vsm://agents",
    }
    [content] = read.contents
    assert isinstance(content, types.TextResourceContents)
    assert json.loads(content.text)["vsm_id"] == "root"
    assert {"diagnose_viability", "respond_to_pain"} <= {p.name for p in prompts}
    [message] = prompt.messages
    assert isinstance(message.content, types.TextContent)
    assert '"disk_full"' in message.content.text
    assert refused.is_error  # a tool error of the gateway reaches the client as one
    assert "agent_not_found: " in text_of(refused)
    assert (bridged_error.value.code, bridged_error.value.message) == (
        direct_error.value.code,
        direct_error.value.message,
    )


async def test_every_tool_says_whether_it_changes_state(url: str, tmp_path: Path) -> None:
    async with bridged(bridge(url, OPERATE_TOKEN, tmp_path)) as desktop:
        tools = {t.name: t.annotations for t in (await desktop.list_tools()).tools}
    unclassified = set(tools) - READS - set(CHANGES)
    assert not unclassified, f"classify the new tools in READS or CHANGES: {unclassified}"
    assert set(tools) == READS | set(CHANGES)  # the tool names stay as they are
    for name in READS:
        hints = tools[name]
        assert hints is not None, name
        assert hints.read_only_hint is True, name
        assert not hints.destructive_hint, name
    for name, (destructive, idempotent) in CHANGES.items():
        hints = tools[name]
        assert hints is not None, name
        assert hints.read_only_hint is False, name
        assert hints.destructive_hint is destructive, name
        assert hints.idempotent_hint is idempotent, name


async def test_a_read_token_reads_through_the_bridge_but_changes_nothing(
    url: str, tmp_path: Path
) -> None:
    async with bridged(bridge(url, READ_TOKEN, tmp_path)) as desktop:
        status = await desktop.call_tool("vsm_status", {})
        signal = await desktop.call_tool("algedonic_signal", {"kind": "pain", "intensity": 0.2})
    assert not status.is_error
    assert signal.is_error
    assert "forbidden: " in text_of(signal)


async def test_a_wrong_or_missing_token_is_a_clear_mcp_error(url: str, tmp_path: Path) -> None:
    for token in ("not-the-gateways-token", None):
        async with bridged(bridge(url, token, tmp_path, cwd=tmp_path)) as desktop:
            for _ in range(2):  # the bridge stays up and answers every request
                with pytest.raises(MCPError) as refused:
                    await desktop.list_tools()
                assert refused.value.message.startswith(
                    f"the gateway at {url}/mcp: 401 unauthorized"
                )
            with pytest.raises(MCPError, match="401 unauthorized"):
                await desktop.call_tool("vsm_status", {})


async def test_an_unreachable_gateway_is_named_in_the_error(tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{closed_port()}"
    stderr = tmp_path / "stderr"
    async with bridged(bridge(gone, OPERATE_TOKEN, tmp_path), errlog=stderr) as desktop:
        with pytest.raises(MCPError) as failed:
            await desktop.call_tool("vsm_status", {})
        with pytest.raises(MCPError, match="cannot reach the gateway"):
            await desktop.list_resources()
    assert failed.value.code == types.CONNECTION_CLOSED
    assert failed.value.message.startswith(f"cannot reach the gateway at {gone}/mcp: ")
    assert f"vsm mcp: cannot reach the gateway at {gone}/mcp" in stderr.read_text()


async def test_run_where_make_run_ran_it_needs_no_token(url: str, run_dir: Path) -> None:
    async with bridged(bridge(url, None, run_dir, cwd=run_dir)) as desktop:
        status = await desktop.call_tool("vsm_status", {})
    assert not status.is_error


async def test_the_printed_claude_desktop_block_works_as_pasted(
    cli_system: LocalSystem, run_dir: Path
) -> None:
    token = (run_dir / TOKEN_FILE).read_text().strip()
    lines = connecting(cli_system, token, from_environment=False).splitlines()
    start = next(i for i, line in enumerate(lines) if "claude_desktop_config.json" in line) + 1
    end = next(i for i, line in enumerate(lines) if "Claude Code" in line)
    server = json.loads("\n".join(lines[start:end]))["mcpServers"]["vsm"]
    assert Path(server["command"]).is_absolute()
    assert server["args"] == ["mcp"]
    launched = StdioServerParameters(
        command=server["command"], args=server["args"], env=server["env"]
    )
    async with bridged(launched) as desktop:
        status = await desktop.call_tool("vsm_status", {})
    assert not status.is_error
