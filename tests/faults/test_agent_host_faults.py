"""Agent hosts killed and stopped while their agents work, on the real broker.

Two host processes offer the test package's `tally` (tests/support/host_agents.py); its
agents spread over both (each host serves its share of the type's partitions). SIGKILL of
one host while its agents' commands run: the broker hands its partitions, with the unacked
commands, to the other, and every command is answered once, by the survivor. SIGTERM of a
host while a command runs: that command finishes and answers where it ran (drain), the
one waiting behind it is served by the other host, and so is what comes after.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.faults import Report, ResultLog
from tests.support.hosts import Host, audit, command, start_host
from tests.support.polling import eventually
from tests.support.system import launch, shut_down
from tests.support.tokens import gateway_client
from vsm.operations.host import HANDOVER_PAUSE_S

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(300)]

TYPES = ["tests.support.host_agents:Tally"]
PARTITIONS = 8
"""The type's partitions (`S1_TYPE_PARTITIONS`): enough that two hosts both own some."""
AGENTS = 16
PAUSE_S = 1.5
"""How long each command of the kill takes: the kill comes while they run."""
HOSTS: list[Host] = []
AGENT_IDS: list[str] = []


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-faults")


@pytest.fixture(scope="module")
def system(amqp_url: str, logs: Path) -> Iterator[LocalSystem]:
    running = launch(
        amqp_url,
        logs,
        services=["operations", "mcp-gateway"],
        S1_TYPE_PARTITIONS=str(PARTITIONS),
    )
    try:
        yield running
    finally:
        for host in HOSTS:
            host.stop()
        asyncio.run(shut_down(running, amqp_url))


def add_host(system: LocalSystem, logs: Path) -> Host:
    host = start_host(system, f"host-{len(HOSTS) + 1}", TYPES, logs)
    HOSTS.append(host)
    host.wait_ready()
    return host


def live_hosts() -> dict[str, Host]:
    return {h.instance: h for h in HOSTS if h.process.poll() is None}


@pytest.fixture(scope="module")
def two_hosts(system: LocalSystem, logs: Path) -> list[Host]:
    return [add_host(system, logs), add_host(system, logs)]


@pytest.fixture
async def rest(system: LocalSystem, two_hosts: list[Host]) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=90) as client:
        yield client


@pytest.fixture
async def results(amqp_url: str, system: LocalSystem) -> AsyncIterator[ResultLog]:
    log = ResultLog(amqp_url, system.env["VSM_NAMESPACE"], name="hosts.results")
    await log.start()
    yield log
    await log.stop()


async def agents(rest: httpx.AsyncClient) -> list[str]:
    """The module's agents, spawned on first use (one slot each: their commands queue)."""
    while len(AGENT_IDS) < AGENTS:
        response = await rest.post(
            "/api/vsm/agents", json={"type": "tally", "config": {"allocation": 1}}
        )
        assert response.status_code == 201, response.text
        AGENT_IDS.append(response.json()["agent_id"])
    return AGENT_IDS


async def spread(rest: httpx.AsyncClient, hosts: set[str]) -> dict[str, str]:
    """Which host serves each agent once they are spread over exactly `hosts` and the
    hand-overs have settled: the same hosts for longer than a hand-over pause, through
    rounds of a command to each agent (a partition another host owns moves at its next
    message)."""
    last: dict[str, Any] = {"where": None, "since": 0.0}

    async def settled() -> dict[str, str] | None:
        ids = await agents(rest)
        await asyncio.gather(*(command(rest, a, "add", {"value": 0}) for a in ids))
        reports = await asyncio.gather(*(audit(rest, a) for a in ids))
        where = {a: r["instance"] for a, r in zip(ids, reports, strict=True)}
        now = time.monotonic()
        if where != last["where"]:
            last.update(where=where, since=now)
        steady = now - last["since"] > HANDOVER_PAUSE_S + 1
        return where if steady and set(where.values()) == hosts else None

    return await eventually(settled, timeout=120, interval=1, what=f"agents settled on {hosts}")


async def test_killing_a_host_loses_no_command_and_the_other_answers_each_once(
    rest: httpx.AsyncClient, results: ResultLog, report: Report
) -> None:
    where = await spread(rest, set(live_hosts()))
    victim_name = Counter(where.values()).most_common(1)[0][0]
    victim, survivor = (
        live_hosts().pop(victim_name),
        next(h for name, h in live_hosts().items() if name != victim_name),
    )
    calls = [(a, n) for a in AGENT_IDS for n in range(2)]
    sent = [
        asyncio.create_task(command(rest, agent_id, "wait", {"seconds": PAUSE_S}))
        for agent_id, _ in calls
    ]
    await asyncio.sleep(PAUSE_S / 2)  # the first command of every agent is running
    running = await audit(rest, next(a for a, h in where.items() if h == victim_name))

    killed = time.monotonic()
    await asyncio.to_thread(victim.kill)
    answers = await asyncio.wait_for(asyncio.gather(*sent), timeout=90)
    answered_s = time.monotonic() - killed

    ids = {answer["command_id"] for answer in answers}
    missing = await results.wait_for(ids, timeout=30)
    on_victim = [
        answer
        for (agent_id, _), answer in zip(calls, answers, strict=True)
        if where[agent_id] == victim_name
    ]
    report(
        "agent_host_sigkill",
        commands=len(calls),
        on_killed_host=len(on_victim),
        answered=len(answers),
        lost=len(missing),
        duplicates=sum(results.seen[i] - 1 for i in ids if results.seen[i] > 1),
        answered_within_s=round(answered_s, 1),
    )
    assert running["in_flight"] == 1, running
    assert [a["status"] for a in answers] == ["ok"] * len(calls), answers
    assert len(ids) == len(calls)
    assert not missing
    assert all(results.seen[i] == 1 for i in ids), {i: results.seen[i] for i in ids}
    assert {a["result"]["host"] for a in on_victim} == {survivor.instance}
    assert {a["result"]["host"] for a in answers} == {survivor.instance}
    assert answered_s < 30


async def test_a_stopped_host_drains_its_running_command_and_the_other_serves_the_rest(
    rest: httpx.AsyncClient, system: LocalSystem, logs: Path, results: ResultLog, report: Report
) -> None:
    await asyncio.to_thread(add_host, system, logs)
    where = await spread(rest, set(live_hosts()))
    stopping_name = Counter(where.values()).most_common(1)[0][0]
    stopping = live_hosts()[stopping_name]
    other = next(name for name in live_hosts() if name != stopping_name)
    agent_id = next(a for a, h in where.items() if h == stopping_name)

    first = asyncio.create_task(command(rest, agent_id, "wait", {"seconds": 3.0}))
    second = asyncio.create_task(command(rest, agent_id, "wait", {"seconds": 0.5}))
    await asyncio.sleep(1.0)
    during = await audit(rest, agent_id)
    stopped = time.monotonic()
    code = await asyncio.to_thread(stopping.stop, 30)
    exited_s = time.monotonic() - stopped

    drained, queued = await asyncio.wait_for(asyncio.gather(first, second), timeout=60)
    later = await command(rest, agent_id, "add", {"value": 1})
    missing = await results.wait_for({drained["command_id"], queued["command_id"]}, timeout=30)
    report(
        "agent_host_sigterm",
        running_at_stop=during["in_flight"],
        waiting_at_stop=during["waiting"],
        exit_code=code,
        exited_within_s=round(exited_s, 1),
        lost=len(missing),
        duplicates=results.duplicates,
    )
    assert (during["instance"], during["in_flight"], during["waiting"]) == (stopping_name, 1, 1)
    assert stopping.clean_exit(code), stopping.tail()
    assert (drained["status"], drained["result"]["host"]) == ("ok", stopping_name), drained
    assert (queued["status"], queued["result"]["host"]) == ("ok", other), queued
    assert (later["status"], later["result"]["host"]) == ("ok", other), later
    assert not missing
    assert results.seen[drained["command_id"]] == results.seen[queued["command_id"]] == 1
