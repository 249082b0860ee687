"""`make run`'s token: generated once under `.run/` (mode 0600) and kept, or the operator's
`MCP_AUTH_TOKEN`; and the generated one works for REST, for MCP (the official SDK client) and
for the CLI run without flags from the directory that holds it."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from scripts.localrun import METRICS_PORTS, TOKEN_FILE, LocalSystem, connecting, local_token
from tests.support.cli import vsm
from tests.support.tokens import bearer, mcp_session
from vsm.mcp_gateway.access import parse_tokens


def made_token(run_dir: Path) -> str:
    return (run_dir / TOKEN_FILE).read_text().strip()


def test_the_first_run_generates_a_token_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / ".run" / "token"
    token = local_token(path, environ={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"{token}\n"
    assert parse_tokens("MCP_AUTH_TOKEN", token, several=False) == [token]  # the gateway takes it
    assert local_token(path, environ={}) == token  # kept: configured clients go on working
    assert local_token(tmp_path / "elsewhere" / "token", environ={}) != token


def test_an_existing_token_is_kept_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / ".run" / "token"
    path.parent.mkdir()
    path.write_text("chosen-by-the-operator-1234\n")
    assert local_token(path, environ={}) == "chosen-by-the-operator-1234"
    assert path.read_text() == "chosen-by-the-operator-1234\n"


def test_mcp_auth_token_wins_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / ".run" / "token"
    environ = {"MCP_AUTH_TOKEN": "from-the-environment-1234"}
    assert local_token(path, environ=environ) == "from-the-environment-1234"
    assert not path.exists()


def test_the_printout_holds_paste_ready_client_configurations(tmp_path: Path) -> None:
    system = LocalSystem(env={}, log_dir=tmp_path, metrics_ports=METRICS_PORTS)
    token = local_token(tmp_path / ".run" / "token", environ={})
    lines = connecting(system, token, from_environment=False).splitlines()
    mcp = "http://127.0.0.1:8000/mcp"
    claude = next(line for line in lines if "claude mcp add" in line)
    assert claude.split(None, 2)[2] == (
        f'claude mcp add --transport http vsm {mcp} --header "Authorization: Bearer {token}"'
    )
    start = next(i for i, line in enumerate(lines) if line.endswith(".mcp.json:")) + 1
    end = next(i for i, line in enumerate(lines) if "gateway metrics" in line)
    servers = json.loads("\n".join(lines[start:end]))
    assert servers == {
        "mcpServers": {
            "vsm": {"type": "http", "url": mcp, "headers": {"Authorization": f"Bearer {token}"}}
        }
    }
    assert any('curl -H "Authorization: Bearer $(cat .run/token)"' in line for line in lines)
    start = next(i for i, line in enumerate(lines) if "claude_desktop_config.json" in line) + 1
    end = next(i for i, line in enumerate(lines) if "Claude Code" in line)
    desktop = json.loads("\n".join(lines[start:end]))
    vsm_script = Path(sys.executable).with_name("vsm")
    assert desktop == {
        "mcpServers": {
            "vsm": {
                "command": str(vsm_script),
                "args": ["mcp"],
                "env": {"VSM_URL": "http://127.0.0.1:8000", "VSM_TOKEN": token},
            }
        }
    }
    assert os.access(vsm_script, os.X_OK)
    assert lines[-1].split() == [
        "gateway",
        "metrics",
        "http://127.0.0.1:9464/metrics",
        "(no",
        "token)",
    ]


@pytest.mark.integration
def test_rest_takes_the_generated_token(cli_system: LocalSystem, run_dir: Path) -> None:
    token = made_token(run_dir)
    with httpx.Client(base_url=cli_system.url("mcp-gateway"), timeout=30) as rest:
        assert rest.get("/api/vsm/status").status_code == 401
        assert rest.get("/api/vsm/status", headers=bearer(token)).status_code == 200
        spawn = {"type": "worker", "name": "make-run-token"}
        spawned = rest.post("/api/vsm/agents", json=spawn, headers=bearer(token))
        assert spawned.status_code == 201, spawned.text
        agent = spawned.json()["agent_id"]
        assert rest.delete(f"/api/vsm/agents/{agent}", headers=bearer(token)).status_code == 200


@pytest.mark.integration
async def test_mcp_takes_the_generated_token(cli_system: LocalSystem, run_dir: Path) -> None:
    async with mcp_session(f"{cli_system.url('mcp-gateway')}/mcp", made_token(run_dir)) as mcp:
        status = await mcp.call_tool("vsm_status", {})
        assert not status.is_error
        assert status.structured_content is not None
        assert status.structured_content["vsm_id"] == "root"
        # A tool that changes state gets past the scope check to the registry's own answer.
        refused = await mcp.call_tool("terminate_agent", {"agent_id": "worker-00000000"})
    assert refused.is_error
    assert "agent_not_found" in json.dumps(refused.model_dump(mode="json"))


@pytest.mark.integration
def test_the_cli_run_where_make_run_ran_needs_no_flag(
    cli_system: LocalSystem, run_dir: Path, tmp_path: Path
) -> None:
    env = {"VSM_URL": cli_system.url("mcp-gateway"), "XDG_CONFIG_HOME": str(tmp_path)}
    shown = vsm("status", "--json", env=env, cwd=run_dir)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"]["vsm_id"] == "root"
    elsewhere = vsm("status", env=env, cwd=tmp_path)  # no .run/token here, nothing configured
    assert elsewhere.returncode == 1
    assert "401 unauthorized" in elsewhere.stderr
