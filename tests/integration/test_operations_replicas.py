"""Scale-out: two operations replicas; SIGKILL the one serving an agent mid-stream, lose nothing.

Every command published (and confirmed by the broker) before or after the kill gets its
result; the surviving replica takes over the agent's queue and still knows the registry.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scripts.localrun import LocalSystem
from tests.integration.test_operations_agents import delete_s1, raw_envelope
from tests.support.probe import Probe, open_probe
from tests.support.system import free_port, launch
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.operations import AgentCommand, CommandResult, command_key, results_exchange
from vsm.kit.bus import AnyEnvelope

pytestmark = pytest.mark.integration
COMMANDS = 300
AGENTS: list[str] = []


@pytest.fixture(scope="module")
def replicas(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalSystem, LocalSystem]]:
    logs = tmp_path_factory.mktemp("logs")
    first = launch(amqp_url, logs)
    second = LocalSystem(
        env=first.env, log_dir=Path(logs) / "replica", ports={"operations": free_port()}
    )
    try:
        second.start(["operations"])
        second.wait_ready(timeout=60, services=["operations"])
        yield first, second
    finally:
        second.stop()
        first.stop()
        asyncio.run(delete_s1(amqp_url, first.env["VSM_NAMESPACE"], AGENTS))


@pytest.fixture
async def probe_of(
    amqp_url: str, replicas: tuple[LocalSystem, LocalSystem]
) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, replicas[0].env["VSM_NAMESPACE"]) as client:
        yield client


async def test_killing_the_serving_replica_loses_no_command(
    replicas: tuple[LocalSystem, LocalSystem], probe_of: Probe
) -> None:
    first, second = replicas
    async with gateway_client(first, timeout=30) as rest:
        spawned = await rest.post("/api/vsm/agents", json={"type": "worker", "config": {}})
        agent_id = spawned.json()["agent_id"]
        AGENTS.append(agent_id)
        audit = await rest.post(
            "/api/vsm/audit/bypass", json={"agent_id": agent_id, "audit_type": "resource_audit"}
        )
        serving_pid = int(audit.json()["report"]["instance"].rsplit("-", 1)[1])
        pids = {first.processes["operations"].pid, second.processes["operations"].pid}
        assert serving_pid in pids

        results = await probe_of.bind_queue(f"obs-{agent_id}", results_exchange(agent_id).name)
        sent = [
            AgentCommand(command_type="process_data", data={"data": i}) for i in range(COMMANDS)
        ]
        key = command_key("worker", agent_id, "process_data")
        for index, command in enumerate(sent):
            if index == COMMANDS // 3:
                os.kill(serving_pid, signal.SIGKILL)
            await probe_of.publish_raw(topology.S1_COMMANDS.name, raw_envelope(command), key)

        seen: set[str] = set()
        while len(seen) < COMMANDS:
            message = await probe_of.get(results, timeout=30)
            result = AnyEnvelope.validate_json(message.body).data
            assert isinstance(result, CommandResult)
            assert result.status == "ok"
            seen.add(result.command_id)
        assert seen == {c.command_id for c in sent}

        after = await rest.post(
            f"/api/vsm/agents/{agent_id}/command",
            json={"type": "process_data", "data": {"data": "still here"}},
        )
        assert after.json()["status"] == "ok"
        listed = [a["agent_id"] for a in (await rest.get("/api/vsm/agents")).json()]
        assert agent_id in listed
