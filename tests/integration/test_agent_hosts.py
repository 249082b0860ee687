"""Agent hosts on the real broker: a host process of its own (`python -m vsm.agent run`)
offering a type written on the SDK in a package of the test's own, and the system that
governs it: registration, placement, typed commands and their errors; spawns through an
organisation file; S3's throttle and S3* audits reaching the hosted agent; an error burst
closing the loop (pain, S5's throttle, recovery); a type left without hosts; a clashing host
refused. The module's system runs the closed loop's fast clocks (`LOOP_ENV`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.integration.test_closed_loop import throttles
from tests.integration.test_control import changes, known, throttle
from tests.support.cli import vsm
from tests.support.closed_loop import LOOP_ENV, Seen, Watch, until_viable
from tests.support.hosts import Host, audit, command, start_host
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged, allocation_key
from vsm.contract.system5 import InterventionOpened, InterventionResolved
from vsm.operations.offers import BUILT_IN

pytestmark = pytest.mark.integration

TYPES = ["tests.support.host_agents:Tally"]


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return LOOP_ENV


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hosts")


@pytest.fixture(scope="module")
def host_a(system: LocalSystem, logs: Path) -> Iterator[Host]:
    host = start_host(system, "host-a", TYPES, logs)
    host.wait_ready()
    yield host
    host.stop()


@pytest.fixture
async def rest(system: LocalSystem, host_a: Host) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=40) as client:
        yield client


async def spawn(
    rest: httpx.AsyncClient, agent_type: str, vsm_id: str = "root", **config: Any
) -> dict[str, Any]:
    response = await rest.post(
        "/api/vsm/agents",
        params={"vsm_id": vsm_id},
        json={"type": agent_type, "config": config},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def timed(*calls: Any) -> float:
    """Seconds until every one of `calls`, started together, has answered."""
    started = time.monotonic()
    await asyncio.gather(*calls)
    return time.monotonic() - started


async def test_the_hosts_types_are_listed_with_their_schemas(rest: httpx.AsyncClient) -> None:
    types = {t["agent_type"]: t for t in (await rest.get("/api/vsm/agent-types")).json()}
    assert {"worker", "tally"} <= set(types)
    add = types["tally"]["commands"]["add"]
    assert add["input_schema"]["required"] == ["value"]
    assert "total" in add["output_schema"]["properties"]
    assert types["tally"]["config_schema"]["properties"]["start"]["minimum"] == 0


async def test_an_agent_of_a_hosted_type_runs_on_the_host(rest: httpx.AsyncClient) -> None:
    agent = await spawn(rest, "tally", start=5)
    assert agent["agent_type"] == "tally"
    answer = await command(rest, agent["agent_id"], "add", {"value": 3})
    assert answer["status"] == "ok", answer
    assert answer["result"] == {"total": 8, "host": "host-a"}


async def test_agents_of_a_hosted_type_spawned_in_bulk_reach_the_host_in_batches(
    rest: httpx.AsyncClient,
) -> None:
    """70 agents in one bulk spawn are logged as two `AgentsSpawned` (64 and 6); the host
    reads both from the registry log and each agent answers there."""
    body = {"agents": [{"type": "tally", "config": {"start": n}} for n in range(70)]}
    reply = await rest.post("/api/vsm/agents:bulk", json=body)
    assert reply.status_code == 200, reply.text
    ids = [r["agent"]["agent_id"] for r in reply.json()["results"]]
    for n in (0, 63, 64, 69):
        answer = await command(rest, ids[n], "add", {"value": 1})
        assert answer["status"] == "ok", answer
        assert answer["result"] == {"total": n + 1, "host": "host-a"}
    gone = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": ids})
    assert gone.json()["terminated"] == 70, gone.text


async def test_a_hosted_types_errors_keep_their_codes(rest: httpx.AsyncClient) -> None:
    agent_id = (await spawn(rest, "tally"))["agent_id"]
    invalid = await command(rest, agent_id, "add", {"value": -1})
    assert invalid["error"]["code"] == "invalid_input"
    assert [e["field"] for e in invalid["error"]["details"]["errors"]] == ["data.value"]
    failed = await command(rest, agent_id, "fail", {})
    assert failed["error"]["code"] == "agent_error"
    assert "hunter2" not in str(failed)
    refused = await command(rest, agent_id, "refuse", {})
    assert refused["error"]["code"] == "not_today"
    wrong = await command(rest, agent_id, "wrong", {})
    assert wrong["error"]["code"] == "invalid_output"
    unknown = await command(rest, agent_id, "multiply", {})
    assert unknown["error"]["code"] == "capability_not_supported"


async def test_a_config_the_types_schema_refuses_is_refused_at_spawn(
    rest: httpx.AsyncClient,
) -> None:
    response = await rest.post("/api/vsm/agents", json={"type": "tally", "config": {"start": -2}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_config"
    assert [e["field"] for e in body["details"]["errors"]] == ["config.start"]


# Spawning ----------------------------------------------------------------------------------
ORGANISATION = """\
agents:
  - name: hosted-tally
    type: tally
    config: {start: 7}
"""


async def test_an_organisation_file_spawns_an_agent_of_a_hosted_type(
    rest: httpx.AsyncClient, system: LocalSystem, tmp_path: Path
) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORGANISATION)
    url = system.url("mcp-gateway")

    applied = await asyncio.to_thread(vsm, "apply", "-f", str(path), url=url)

    assert applied.returncode == 0, applied.stderr
    assert "created agent hosted-tally of root" in applied.stdout
    listed = {a["name"]: a for a in (await rest.get("/api/vsm/agents")).json()}
    agent = listed["hosted-tally"]
    assert (agent["agent_type"], agent["pool"], agent["config"]) == ("tally", "tally", {"start": 7})
    answer = await command(rest, agent["agent_id"], "add", {"value": 1})
    assert answer["result"] == {"total": 8, "host": "host-a"}
    again = await asyncio.to_thread(vsm, "apply", "-f", str(path), url=url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "No changes: the running system matches the file.\n"


# S3* audits and S3's allocation ------------------------------------------------------------
async def test_an_audit_of_a_hosted_agent_shows_its_own_view_and_where_it_runs(
    rest: httpx.AsyncClient,
) -> None:
    vsm_id = "root/hosted-audit"
    agent_id = (await spawn(rest, "tally", vsm_id, start=2, allocation=3))["agent_id"]
    await command(rest, agent_id, "add", {"value": 40})

    state = await audit(rest, agent_id, "state_dump")

    assert state["behaviour"] == {"total": 42}
    assert (state["instance"], state["pool"]) == ("host-a", "tally")
    assert state["agent"]["agent_id"] == agent_id
    assert state["resources"]["allocation"] == 3
    resources = await audit(rest, agent_id, "resource_audit")
    assert (resources["allocation"], resources["max_rate_per_s"]) == (3, None)
    measures = await audit(rest, agent_id, "metrics_only")
    assert measures["succeeded"] >= 1
    await known(rest, vsm_id, agent_id)

    async def answered() -> dict[str, Any] | None:
        reply = await rest.post(
            "/api/vsm/system/3/audit", params={"vsm_id": vsm_id}, json={"timeout_s": 5}
        )
        assert reply.status_code == 200, reply.text
        found = {a["agent_id"]: a for a in reply.json()["agents"]}
        return found.get(agent_id)

    by_s3 = await eventually(answered, timeout=30, interval=1, what="S3's audit of the agent")
    assert by_s3["outcome"] == "answered"
    assert by_s3["report"]["allocation"] == 3


async def test_an_s3_throttle_slows_a_hosted_agent_and_a_later_version_restores_it(
    rest: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm_id = "root/hosted-throttle"
    agent_id = (await spawn(rest, "tally", vsm_id, allocation=4))["agent_id"]
    await known(rest, vsm_id, agent_id)
    watched = await system_probe.bind_queue(
        f"hosted.allocations.{agent_id}", topology.CONTROL.name, allocation_key(agent_id)
    )

    def pauses(count: int, seconds: float) -> list[Any]:
        return [command(rest, agent_id, "wait", {"seconds": seconds}) for _ in range(count)]

    free = await timed(*pauses(4, 1.0))
    assert free < 1.9, f"4 pauses of 1 s took {free:.2f} s with 4 slots"
    limit = {"target": agent_id, "max_rate_per_s": 2, "max_concurrency": 1, "reason": "test"}
    await throttle(rest, vsm_id, limit, reason="test")
    [throttled] = await changes(system_probe, watched, 1)
    assert (throttled.data.resources.concurrency_slots, throttled.data.max_rate_per_s) == (1, 2.0)

    async def taken() -> dict[str, Any] | None:
        report = await audit(rest, agent_id, "resource_audit")
        return report if (report["allocation"], report["max_rate_per_s"]) == (1, 2.0) else None

    await eventually(taken, what="the throttle at the hosted agent")
    started = time.monotonic()
    running = asyncio.gather(*pauses(4, 0.6))
    during = []  # the agent's own view while they run
    while not running.done():
        during.append(await audit(rest, agent_id, "resource_audit"))
        await asyncio.sleep(0.1)
    await running
    one_at_a_time = time.monotonic() - started
    paced = await timed(*(command(rest, agent_id, "add", {"value": 1}) for _ in range(6)))
    assert max(report["in_flight"] for report in during) == 1, during
    assert max(report["waiting"] for report in during) >= 2, during
    assert one_at_a_time >= 4 * 0.6 - 0.1, f"4 pauses of 0.6 s took {one_at_a_time:.2f} s"
    assert paced >= 5 / 2.0 - 0.2, f"6 commands at 2/s took {paced:.2f} s"

    await throttle(rest, vsm_id, {"target": "someone-else", "max_rate_per_s": 5})
    [restored] = await changes(system_probe, watched, 1)
    assert (restored.data.resources.concurrency_slots, restored.data.max_rate_per_s) == (4, None)

    async def lifted() -> dict[str, Any] | None:
        report = await audit(rest, agent_id, "resource_audit")
        return report if (report["allocation"], report["max_rate_per_s"]) == (4, None) else None

    await eventually(lifted, what="the hosted agent's allocation restored")
    again = await timed(*pauses(4, 1.0))
    assert again < 1.9, f"4 pauses of 1 s took {again:.2f} s once restored"
    print(
        f"\nhosted throttle: 4x1 s pauses {free:.2f} s (4 slots); throttled to 1 slot, 2/s: "
        f"4x0.6 s pauses {one_at_a_time:.2f} s, 6 adds {paced:.2f} s; restored: {again:.2f} s"
    )


# Hosts coming and going --------------------------------------------------------------------
async def test_a_type_whose_hosts_all_stopped_has_no_host_and_an_unknown_one_is_invalid(
    rest: httpx.AsyncClient, system: LocalSystem, logs: Path
) -> None:
    beacon = start_host(system, "host-beacon", ["tests.support.host_agents:Beacon"], logs)
    await asyncio.to_thread(beacon.wait_ready)
    agent_id = (await spawn(rest, "beacon"))["agent_id"]
    assert (await command(rest, agent_id, "where", {}))["result"]["host"] == "host-beacon"

    assert beacon.clean_exit(await asyncio.to_thread(beacon.stop)), beacon.tail()
    stopped = time.monotonic()

    async def refused() -> httpx.Response | None:
        response = await rest.post("/api/vsm/agents", json={"type": "beacon", "config": {}})
        assert response.status_code in (201, 409), response.text
        return response if response.status_code == 409 else None

    response = await eventually(refused, timeout=30, interval=0.5, what="no host for beacon")
    after_s = time.monotonic() - stopped
    body = response.json()
    assert body["error"] == "no_host_for_type"
    assert body["details"]["agent_type"] == "beacon"
    assert "'beacon'" in response.text
    assert after_s <= max(5 * 0.5, 10.0) + 5, f"refused only {after_s:.1f} s after the stop"
    never = await rest.post("/api/vsm/agents", json={"type": "never-offered", "config": {}})
    assert never.status_code == 422, never.text
    assert never.json()["error"] == "invalid_agent_type"
    print(f"\nno_host_for_type {after_s:.1f} s after the last host of beacon stopped")


async def test_a_host_offering_a_known_name_with_other_schemas_is_refused_and_exits(
    rest: httpx.AsyncClient, system: LocalSystem, logs: Path
) -> None:
    clashing = start_host(system, "host-clash", ["tests.support.host_agents_clash:Tally"], logs)
    usurper = start_host(system, "host-usurper", ["tests.support.host_agents_clash:Worker"], logs)

    exits = [await asyncio.to_thread(h.exited, 120) for h in (clashing, usurper)]

    assert all(code != 0 for code in exits), exits
    clash = clashing.text()
    assert "agent_type_clash" in clash
    assert "agent host host-clash" in clash
    assert "agent host host-a" in clash
    built_in = usurper.text()
    assert "agent_type_clash" in built_in
    assert BUILT_IN in built_in
    types = {t["agent_type"]: t for t in (await rest.get("/api/vsm/agent-types")).json()}
    assert types["tally"]["commands"]["add"]["input_schema"]["properties"]["value"]["type"] == (
        "integer"
    )
    agent_id = (await spawn(rest, "tally"))["agent_id"]
    assert (await command(rest, agent_id, "add", {"value": 2}))["result"]["host"] == "host-a"


# The closed loop ---------------------------------------------------------------------------
@pytest.mark.timeout(240)
async def test_an_error_burst_hurts_and_the_loop_throttles_the_hosted_agent_until_it_recovers(
    rest: httpx.AsyncClient, system_probe: Probe
) -> None:
    config = {
        "allocation": 4,
        "max_allocation": 4,
        "algedonic": {"pain_errors": 5, "pain_window_s": 2, "calm_s": 3},
    }
    agent_id = (await spawn(rest, "tally", **config))["agent_id"]
    watch = Watch(system_probe)
    await watch.start(agent_id)
    failing = True

    async def work() -> None:
        """Four callers, each a command every 0.2 s at most (20/s offered): `fail` while
        failing, `add` once healed."""
        while True:
            kind, data = ("fail", {}) if failing else ("add", {"value": 1})
            await command(rest, agent_id, kind, data)
            await asyncio.sleep(0.2)

    failed_at = time.monotonic()
    callers = [asyncio.create_task(work()) for _ in range(4)]
    try:
        opened = await watch.first(InterventionOpened.TYPE, failed_at)
        signals = {s.envelope["id"]: s for s in watch.of(AlgedonicSignal.TYPE, failed_at)}
        pain = signals[opened.envelope["causationid"]]
        assert (pain.data["kind"], pain.data["reason"]) == ("pain", "error_burst")
        assert pain.data["origin"] == f"operations/{agent_id}"
        assert pain.data["context"]["agent_type"] == "tally"

        async def limiting() -> Seen | None:
            found = throttles(watch, agent_id, failed_at)
            return next((seen for seen, limits in found if limits), None)

        throttle = await eventually(limiting, timeout=30, what="a throttle on the agent")
        allocation = await watch.first(AllocationChanged.TYPE, throttle.at)
        rate = allocation.data["max_rate_per_s"]
        assert rate is not None

        async def honoured() -> dict[str, Any] | None:
            report = await audit(rest, agent_id, "resource_audit")
            return report if report["max_rate_per_s"] == rate else None

        await eventually(honoured, timeout=15, what="the throttle at the hosted agent")
        await asyncio.sleep(5)
        failures_per_s = watch.failures_per_s(allocation.at + 2, allocation.at + 5)
        assert failures_per_s <= rate * 1.3 + 1, f"{failures_per_s:.1f}/s throttled to {rate}/s"

        failing = False
        healed_at = time.monotonic()
        resolved = await watch.first(InterventionResolved.TYPE, healed_at, timeout=90)
        assert resolved.data["intervention_id"] == opened.data["intervention_id"]

        async def lifting() -> Seen | None:
            found = throttles(watch, agent_id, resolved.at)
            return next((seen for seen, limits in found if not limits), None)

        lifted = await eventually(lifting, timeout=30, what="the throttle lifted")
        restored = await watch.first(AllocationChanged.TYPE, lifted.at)
        assert restored.data["max_rate_per_s"] is None

        async def unthrottled() -> dict[str, Any] | None:
            report = await audit(rest, agent_id, "resource_audit")
            return report if report["max_rate_per_s"] is None else None

        await eventually(unthrottled, timeout=15, what="the hosted agent unthrottled")
        recovery_s = await until_viable(rest, viable=True, timeout=60)
        print(
            f"\nhosted loop: pain -> intervention {opened.at - failed_at:.1f} s, throttled to "
            f"{rate}/s ({failures_per_s:.1f} failures/s, 20/s offered); resolved "
            f"{resolved.at - healed_at:.1f} s after healing, viable "
            f"{time.monotonic() - healed_at:.1f} s after (last wait {recovery_s:.1f} s)"
        )
    finally:
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await watch.stop()
