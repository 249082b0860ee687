"""Each `vsm` command against the running system: its output, its JSON, its exit code."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.cli import vsm
from tests.support.probe import open_probe
from tests.support.tokens import OPERATE_TOKEN, bearer
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, proposal_key

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_shows_every_system_viability_and_pain(url: str) -> None:
    shown = vsm("status", url=url)
    assert shown.returncode == 0, shown.stderr
    for service in ("queen", "intelligence", "operations", "mcp-gateway"):
        assert service in shown.stdout
    assert re.search(r"root (up|degraded|down)\s+viability", shown.stdout)
    assert re.search(r"pain \d\.\d\d", shown.stdout)
    assert "Interventions" in shown.stdout

    raw = json.loads(vsm("status", "--json", url=url).stdout)
    assert {c["service"] for c in raw["status"]["components"]} >= {"queen", "operations"}
    assert raw["system5"]["vsm_id"] == "root"


def test_agents_spawn_list_command_and_terminate_by_name(url: str) -> None:
    spawned = vsm(
        "agents", "spawn", "worker", "--name", "cli-w", "--config", '{"allocation": 2}', url=url
    )
    assert spawned.returncode == 0, spawned.stderr
    assert re.fullmatch(r"spawned worker worker-[0-9a-f]+ \(cli-w\)\n", spawned.stdout)

    listed = vsm("agents", "list", "--type", "worker", url=url).stdout
    assert re.search(r"worker-[0-9a-f]+ +cli-w +worker +root +running +2/16", listed)
    raw = json.loads(vsm("agents", "list", "--json", url=url).stdout)
    [agent] = [a for a in raw if a["name"] == "cli-w"]

    data = {"data": {"order": 7}}
    ran = vsm("agents", "command", "cli-w", "process_data", "--data", json.dumps(data), url=url)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"process_data on {agent['agent_id']}: ok (")
    checksum = hashlib.sha256(b'{"order":7}').hexdigest()
    assert json.loads(ran.stdout.split("\n", 1)[1])["checksum"] == checksum

    failed = vsm("agents", "command", "cli-w", "analyze", "--data", '{"values": []}', url=url)
    assert failed.returncode == 1
    assert ": error (" in failed.stdout

    ended = vsm("agents", "terminate", "cli-w", url=url)
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout == f"terminated worker {agent['agent_id']}\n"
    assert "cli-w" not in vsm("agents", "list", url=url).stdout


def test_signal_reaches_s5(url: str) -> None:
    sent = vsm("signal", "pleasure", "0.4", "--reason", "cli_test", url=url)
    assert sent.returncode == 0, sent.stderr
    assert re.fullmatch(r"pleasure 0.4 sent as message \S+\n", sent.stdout)
    raw = json.loads(vsm("signal", "pain", "0.3", "--json", url=url).stdout)
    assert raw["kind"] == "pain"
    assert raw["intensity"] == 0.3

    for _ in range(50):
        feeling = json.loads(vsm("status", "--json", url=url).stdout)["system5"]["algedonic"]
        if feeling["pain"] > 0 and feeling["pleasure"] > 0:
            break
    assert feeling["pain"] > 0
    assert feeling["pleasure"] > 0


def test_policy_list_show_and_diff(url: str) -> None:
    versions = []
    for rate in (50, 20):
        policy = {
            "policy_type": "throttle",
            "limits": [{"target": "cli-t", "max_rate_per_s": rate}],
        }
        stored = httpx.put(
            f"{url}/api/vsm/policies/throttle",
            json={"policy": policy},
            headers=bearer(),
            timeout=30,
        )
        assert stored.status_code == 200, stored.text
        versions.append(stored.json()["version"])
    a, b = versions

    listed = vsm("policy", "list", url=url)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"throttle +{b} +operator", listed.stdout)

    shown = vsm("policy", "show", "throttle", str(a), url=url)
    assert shown.stdout.startswith(f"throttle v{a} of root, by operator")
    assert "target: cli-t" in shown.stdout
    assert "max_rate_per_s: 50" in shown.stdout

    diffed = vsm("policy", "diff", "throttle", str(a), str(b), url=url)
    assert diffed.returncode == 0, diffed.stderr
    assert re.search(r"~ limits\.\d+\.max_rate_per_s: 50(\.0)? -> 20(\.0)?", diffed.stdout)
    raw = json.loads(vsm("policy", "diff", "throttle", str(a), str(b), "--json", url=url).stdout)
    assert raw["from_version"] == a


def test_trace_draws_the_chain_from_pain_to_policy(url: str) -> None:
    sent = json.loads(
        vsm("signal", "pain", "0.95", "--reason", "cli_trace", "--json", url=url).stdout
    )
    for _ in range(60):
        traced = vsm("trace", sent["id"], url=url)
        if "vsm.s5.policy.changed.v1" in traced.stdout:
            break
    assert traced.returncode == 0, traced.stderr
    lines = traced.stdout.splitlines()
    assert lines[0].startswith(f"causal chain of {sent['id']}")
    signal = next(i for i, line in enumerate(lines) if "vsm.algedonic.signal.v1" in line)
    policy = next(i for i, line in enumerate(lines) if "vsm.s5.policy.changed.v1" in line)
    assert policy > signal
    indent = len(lines[policy]) - len(lines[policy].lstrip(" │├└─"))
    assert indent > len(lines[signal]) - len(lines[signal].lstrip(" │├└─"))


def test_errors_are_one_line_with_distinct_exit_codes(url: str, tmp_path: Path) -> None:
    unreachable = vsm("status", url=f"http://127.0.0.1:{closed_port()}")
    assert unreachable.returncode == 3
    assert re.fullmatch(
        r"vsm: cannot reach the gateway at http://127\.0\.0\.1:\d+: .+\n", unreachable.stderr
    )
    assert unreachable.stdout == ""

    refused = vsm("policy", "show", "throttle", "9999", url=url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("vsm: GET /api/vsm/policies/throttle/9999: 404 ")
    assert refused.stderr.count("\n") == 1

    usage = vsm("signal", "pain", "2", url=url)
    assert usage.returncode == 2
    assert usage.stderr.startswith("vsm: Invalid value for 'INTENSITY'")
    assert usage.stderr.count("\n") == 1

    unknown = vsm("agents", "terminate", "no-such-agent", url=url)
    assert unknown.returncode == 1
    assert "no running agent has the id or name 'no-such-agent'" in unknown.stderr


def test_agents_terminate_ends_several_agents_in_one_command(url: str) -> None:
    names = [f"cli-end{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    for name in names:
        spawned = vsm("agents", "spawn", "worker", "--name", name, url=url)
        assert spawned.returncode == 0, spawned.stderr

    ended = vsm("agents", "terminate", *names, "--json", url=url)

    assert ended.returncode == 0, ended.stderr
    gone = json.loads(ended.stdout)
    assert [a["name"] for a in gone] == names
    assert {a["state"] for a in gone} == {"terminated"}
    running = json.loads(vsm("agents", "list", "--json", url=url).stdout)
    assert not set(names) & {a.get("name") for a in running}


def test_gateway_and_token_come_from_the_config_file(url: str, tmp_path: Path) -> None:
    (tmp_path / "vsm").mkdir()
    (tmp_path / "vsm" / "config.toml").write_text(f'url = "{url}"\ntoken = "{OPERATE_TOKEN}"\n')
    shown = vsm("status", "--json", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"]["vsm_id"] == "root"
    flag_wins = vsm(
        "status", env={"XDG_CONFIG_HOME": str(tmp_path), "VSM_URL": "http://127.0.0.1:9"}
    )
    assert flag_wins.returncode == 3


@pytest.mark.timeout(300)
async def test_approvals_list_approve_and_reject(
    url: str, cli_system: LocalSystem, amqp_url: str
) -> None:
    """S4's throttles wait for a person (this system's governance says so): the CLI lists
    them, approves one into force and rejects the other; a late decision is refused (409)."""
    vsm_id = f"root/cli{uuid.uuid4().hex[:6]}"
    rights = {"principles": ["p"], "approvals": [{"policy_type": "throttle", "authors": ["s4"]}]}
    async with (
        httpx.AsyncClient(base_url=url, headers=bearer(), timeout=30) as gateway,
        open_probe(amqp_url, cli_system.env["VSM_NAMESPACE"]) as probe,
    ):
        for kind, policy in (("governance", rights), ("throttle", {"limits": []})):
            stored = await gateway.put(
                f"/api/vsm/policies/{kind}", json={"policy": policy}, params={"vsm_id": vsm_id}
            )
            assert stored.status_code == 200, stored.text
        for rate in (3, 4):
            proposal = AdaptationProposal(
                proposal_id=f"p-cli-{rate}", kind="defensive", rationale="slow cli-a",
                policy_type="throttle", confidence=0.6,
                policy={"limits": [{"target": "cli-a", "max_rate_per_s": rate}]},
            )  # fmt: skip
            await probe.bus.publish(
                topology.INTELLIGENCE, proposal, routing_key=proposal_key("defensive"),
                vsm_id=vsm_id,
            )  # fmt: skip
        for _ in range(100):
            listed = (await gateway.get("/api/vsm/approvals")).json()
            ours = [a for a in listed if a["vsm_id"] == vsm_id]
            if len(ours) == 2:
                break
            await asyncio.sleep(0.2)
    first, second = (a["approval_id"] for a in ours)
    table = vsm("approvals", "list", url=url)
    assert table.returncode == 0, table.stderr
    assert re.search(rf"{first} +{vsm_id} +throttle +s4:defensive", table.stdout)

    approved = vsm("approvals", "approve", first, "--note", "fine", url=url)
    assert approved.returncode == 0, approved.stderr
    assert re.fullmatch(
        rf"{first} approved by api:[0-9a-f]{{8}}: throttle v2 is in force\n", approved.stdout
    )
    rejected = vsm("approvals", "reject", second, url=url)
    assert re.fullmatch(rf"{second} rejected by api:[0-9a-f]{{8}}\n", rejected.stdout)
    late = vsm("approvals", "approve", second, url=url)
    assert late.returncode == 1
    assert "409 approval_closed" in late.stderr
    unknown = vsm("approvals", "reject", "ap-000000000000", url=url)
    assert "404 approval_not_found" in unknown.stderr
