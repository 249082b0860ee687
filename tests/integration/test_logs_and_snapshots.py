"""The policy log and the registry log with snapshots (`vsm.kit.snapshots`), on the running
system: after many entries and a snapshot, a restart of queen or operations restores the same
state reading only from the last snapshot on, entries written after the snapshot included;
both streams carry their retention."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed

from scripts.localrun import LocalSystem
from tests.support.system import launch, shut_down
from vsm.contract import topology
from vsm.contract.operations import REGISTRY_LOG
from vsm.kit.names import Namespace

pytestmark = pytest.mark.integration

EVERY = 10
KEPT = 2
RETENTION = {
    "x-queue-type": "stream",
    "x-max-length-bytes": 64 * 1024 * 1024,
    "x-stream-max-segment-size-bytes": 4 * 1024 * 1024,
    "x-max-age": "30D",
}


@pytest.fixture(scope="module")
def system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """The services whose logs these are, and the gateway in front of them."""
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        services=["queen", "operations", "mcp-gateway"],
        ready_within_s=400,
        VSM_LOG_SNAPSHOT_EVERY=str(EVERY),
        POLICY_VERSIONS_KEPT=str(KEPT),
        VSM_LOG_MAX_BYTES=str(RETENTION["x-max-length-bytes"]),
        VSM_LOG_SEGMENT_BYTES=str(RETENTION["x-stream-max-segment-size-bytes"]),
        VSM_LOG_MAX_AGE="30D",
    )
    yield running
    asyncio.run(shut_down(running, amqp_url))


def restart(system: LocalSystem, service: str) -> None:
    system.kill(service, signal.SIGTERM)
    system.processes[service].wait(timeout=15)
    system.start([service])
    system.wait_ready(timeout=300, services=[service])


def last_read(system: LocalSystem, service: str, stream: str) -> dict[str, Any]:
    """How `service` last read `stream` at start-up (its last `log_read` event)."""
    found = [
        json.loads(line)
        for line in system.log(service).read_text().splitlines()
        if '"log_read"' in line and line.startswith("{")
    ]
    found = [event for event in found if event["stream"] == stream]
    assert found, f"{service} logged no log_read of {stream}"
    record: dict[str, Any] = found[-1]
    return record


async def test_both_logs_are_declared_with_the_retention_set(
    amqp_url: str, system: LocalSystem
) -> None:
    namespace = Namespace(system.env["VSM_NAMESPACE"])
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for stream in (topology.SYSTEM5_POLICIES, REGISTRY_LOG):
            name = namespace.name(stream.name)
            channel = await connection.channel()
            await channel.declare_queue(name, durable=True, arguments=RETENTION)
            without = {k: v for k, v in RETENTION.items() if k != "x-max-age"}
            with pytest.raises(ChannelPreconditionFailed):  # declared with other arguments
                await (await connection.channel()).declare_queue(
                    name, durable=True, arguments=without
                )


async def test_a_restart_of_queen_reads_its_policies_from_the_last_snapshot(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    versions = 3 * EVERY + 4  # snapshots along the way, four changes after the last one
    for n in range(versions):
        limits = [{"target": "*", "max_rate_per_s": 100 + n}]
        answer = await gateway.put(
            "/api/vsm/policies/throttle", json={"policy": {"limits": limits}, "reason": "test"}
        )
        assert answer.status_code in {200, 201}, answer.text
    before = (await gateway.get("/api/vsm/policies")).json()
    latest = (await gateway.get("/api/vsm/policies/throttle")).json()

    restart(system, "queen")

    assert (await gateway.get("/api/vsm/policies")).json() == before
    after = (await gateway.get("/api/vsm/policies/throttle")).json()
    assert after == latest
    assert after["policy"]["limits"][0]["max_rate_per_s"] == 100 + versions - 1
    kept = await gateway.get(f"/api/vsm/policies/throttle/{latest['version'] - KEPT + 1}")
    assert kept.json()["policy"]["limits"][0]["max_rate_per_s"] == 100 + versions - KEPT
    gone = await gateway.get(f"/api/vsm/policies/throttle/{latest['version'] - KEPT}")
    assert gone.status_code == 404, gone.text
    assert "POLICY_VERSIONS_KEPT" in gone.text
    read = last_read(system, "queen", topology.SYSTEM5_POLICIES.name)
    # From the last snapshot on, not from the first entry: the snapshot, the changes after it
    # (fewer than VSM_LOG_SNAPSHOT_EVERY or the versions kept), the marker.
    assert read["snapshot"] is not None, read
    assert read["start"] == read["snapshot"] > 0, read
    assert read["entries"] < versions, read


async def test_a_restart_of_operations_reads_its_registry_from_the_last_snapshot(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    spawned = []
    for _ in range(2 * EVERY + 3):
        answer = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
        assert answer.status_code in {200, 201}, answer.text
        spawned.append(answer.json()["agent_id"])
    for agent_id in spawned[:EVERY]:
        assert (await gateway.delete(f"/api/vsm/agents/{agent_id}")).status_code == 200
    last = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    spawned.append(last.json()["agent_id"])  # after the last snapshot
    before = {a["agent_id"] for a in (await gateway.get("/api/vsm/agents")).json()}
    assert set(spawned[EVERY:]) <= before
    assert not set(spawned[:EVERY]) & before

    restart(system, "operations")

    after = {a["agent_id"] for a in (await gateway.get("/api/vsm/agents")).json()}
    assert after == before
    read = last_read(system, "operations", REGISTRY_LOG.name)
    assert read["snapshot"] is not None, read
    assert 0 < read["start"] <= read["snapshot"], read  # just after the entry it covers
    assert read["entries"] < len(spawned) + EVERY, read
    # Entries written after the restart's snapshot are applied by the next restart too.
    await gateway.delete(f"/api/vsm/agents/{spawned[-1]}")
    restart(system, "operations")
    again = {a["agent_id"] for a in (await gateway.get("/api/vsm/agents")).json()}
    assert again == before - {spawned[-1]}
