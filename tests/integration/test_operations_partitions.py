"""Agents at scale on the real broker: agents are no queues but routes into a fixed number of
partitions, each served by one operations replica at a time, spread over the replicas.

One module-wide system (operations and the gateway), and one fleet of agents spawned in bulk
by the first test that needs it; replicas join the system as a test needs them (each test
stands on its own, run alone or with the others): thousands of agents spawned in bulk all
answer; one agent's commands keep their order; an audit, an
allocation and a note reach the right agent on any partition; two replicas split the
partitions and a third takes a share; SIGKILL of a serving replica in the middle of 300
commands to 50 agents loses none, and its agents answer again from the others.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.integration.test_operations_agents import delete_s1, raw_envelope
from tests.support.polling import eventually
from tests.support.probe import Probe, open_probe
from tests.support.system import READY_WITHIN_S, free_port, launch
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.control import AllocationChanged, Resources, allocation_key
from vsm.contract.coordination import CoordinationNote, note_key
from vsm.contract.operations import (
    AgentCommand,
    CommandResult,
    command_key,
    earlier_command_queue,
    partition_of,
    results_exchange,
)
from vsm.kit.bus import AnyEnvelope

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 16
AGENTS = int(os.environ.get("VSM_TEST_PARTITION_AGENTS", "2000"))
"""Agents spawned in bulk (the issue's 2,000), into a viable system of their own."""
BULK = 1000
"""Agents per bulk request (`REST_BULK_SPAWN_MAX`)."""
SPAWNED: list[str] = []
"""Every agent the tests spawned (deleted from the broker at the end)."""
FLEET: list[dict[str, Any]] = []
"""The agents spawned in bulk (`fleet`), once for the module."""
REPLICAS: list[LocalSystem] = []


@pytest.fixture(scope="module")
def system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    logs = tmp_path_factory.mktemp("logs")
    first = launch(amqp_url, logs, services=["operations", "mcp-gateway"])
    try:
        yield first
    finally:
        for replica in REPLICAS:
            replica.stop()
        first.stop()
        asyncio.run(delete_s1(amqp_url, first.env["VSM_NAMESPACE"], SPAWNED))


def live_replicas(first: LocalSystem) -> int:
    """Operations processes running: the system's own and the replicas added (one killed
    is not counted)."""
    return sum(s.processes["operations"].poll() is None for s in [first, *REPLICAS])


def add_replica(first: LocalSystem) -> LocalSystem:
    index = len(REPLICAS) + 1
    logs = Path(first.log_dir) / f"replica{index}"
    replica = LocalSystem(env=first.env, log_dir=logs, ports={"operations": free_port()})
    REPLICAS.append(replica)
    replica.start(["operations"])
    replica.wait_ready(timeout=READY_WITHIN_S, services=["operations"])
    return replica


@pytest.fixture
async def rest(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=60) as client:
        yield client


@pytest.fixture
async def probe(amqp_url: str, system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, system.env["VSM_NAMESPACE"]) as client:
        yield client


async def gathered(calls: list[Any], at_once: int = 16) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def spawn(rest: httpx.AsyncClient, **config: Any) -> dict[str, Any]:
    response = await rest.post("/api/vsm/agents", json={"type": "worker", "config": config})
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    SPAWNED.append(agent["agent_id"])
    return agent


async def spawn_bulk(rest: httpx.AsyncClient, count: int, vsm_id: str) -> list[dict[str, Any]]:
    """`count` workers spawned in bulk requests of `BULK`, all into `vsm_id`."""
    agents: list[dict[str, Any]] = []
    while len(agents) < count:
        items = [{"type": "worker"}] * min(BULK, count - len(agents))
        response = await rest.post(
            "/api/vsm/agents:bulk", params={"vsm_id": vsm_id}, json={"agents": items}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["refused"] == 0, answer
        agents += [r["agent"] for r in answer["results"]]
    SPAWNED.extend(a["agent_id"] for a in agents)
    return agents


async def fleet(rest: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The `AGENTS` workers of "root/scale", spawned in bulk by the first test that asks."""
    if not FLEET:
        FLEET.extend(await spawn_bulk(rest, AGENTS, "root/scale"))
    return FLEET


async def fleet_ids(rest: httpx.AsyncClient) -> list[str]:
    return [agent["agent_id"] for agent in await fleet(rest)]


async def command(rest: httpx.AsyncClient, agent_id: str, data: Any = 1) -> dict[str, Any]:
    response = await rest.post(
        f"/api/vsm/agents/{agent_id}/command",
        json={"type": "process_data", "data": {"data": data}, "timeout_s": 30},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def audit(rest: httpx.AsyncClient, agent_id: str, kind: str = "resource_audit") -> Any:
    response = await rest.post(
        "/api/vsm/audit/bypass", json={"agent_id": agent_id, "audit_type": kind, "timeout_s": 10}
    )
    assert response.status_code == 200, response.text
    return response.json()["report"]


async def one_per_partition(rest: httpx.AsyncClient) -> dict[int, str]:
    """One agent of the fleet on each partition."""
    chosen: dict[int, str] = {}
    for agent_id in await fleet_ids(rest):
        chosen.setdefault(partition_of(agent_id, PARTITIONS), agent_id)
    assert len(chosen) == PARTITIONS
    return chosen


async def serving(rest: httpx.AsyncClient, agents: dict[int, str]) -> dict[int, str]:
    """Which replica serves each partition now (after a command to each, so that a partition
    owned elsewhere moves there)."""
    await gathered([command(rest, a) for a in agents.values()])
    reports = await gathered([audit(rest, a) for a in agents.values()])
    return {p: r["instance"] for p, r in zip(agents, reports, strict=True)}


async def test_thousands_of_agents_spawned_in_bulk_without_queues_all_answer(
    rest: httpx.AsyncClient, amqp_url: str, system: LocalSystem
) -> None:
    agents = await fleet(rest)
    assert len(agents) == AGENTS
    for agent in agents:
        assert agent["partition"] == partition_of(agent["agent_id"], PARTITIONS)
    assert len({a["partition"] for a in agents}) == PARTITIONS

    answers = await gathered([command(rest, a["agent_id"], i) for i, a in enumerate(agents)])
    assert all(answer["status"] == "ok" for answer in answers)
    assert {a["agent_id"] for a in answers} == {a["agent_id"] for a in agents}

    prefix = system.env["VSM_NAMESPACE"]
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):  # no queue of its own
            await channel.get_queue(
                f"{prefix}.{earlier_command_queue(agents[0]['agent_id']).name}", ensure=True
            )


async def test_commands_to_one_agent_are_handled_in_their_order(
    rest: httpx.AsyncClient, probe: Probe
) -> None:
    agent_id = (await spawn(rest, allocation=1))["agent_id"]
    results = await probe.bind_queue(f"order-{agent_id}", results_exchange(agent_id).name)
    sent = [AgentCommand(command_type="process_data", data={"data": i}) for i in range(100)]
    key = command_key("worker", agent_id, "process_data")
    for one in sent:
        await probe.publish_raw(topology.S1_COMMANDS.name, raw_envelope(one), key)
    seen = set()
    while len(seen) < len(sent):
        result = AnyEnvelope.validate_json((await probe.get(results, timeout=60)).body).data
        assert isinstance(result, CommandResult)
        seen.add(result.command_id)
    handled = (await audit(rest, agent_id, "state_dump"))["last_commands"]
    assert handled == [c.command_id for c in sent]


async def test_an_audit_reaches_an_agent_on_every_partition(rest: httpx.AsyncClient) -> None:
    chosen = await one_per_partition(rest)
    reports = await gathered([audit(rest, a, "state_dump") for a in chosen.values()])
    for (partition, agent_id), report in zip(chosen.items(), reports, strict=True):
        assert report["agent"]["agent_id"] == agent_id
        assert report["partition"] == partition


async def test_allocations_and_notes_reach_the_right_agent(
    rest: httpx.AsyncClient, probe: Probe
) -> None:
    chosen = await one_per_partition(rest)
    allocated, noted = chosen[0], chosen[PARTITIONS - 1]
    change = AllocationChanged(
        agent_id=allocated,
        agent_type="worker",
        resources=Resources(concurrency_slots=5),
        reason="partition test",
    )
    await probe.bus.publish(topology.CONTROL, change, routing_key=allocation_key(allocated))
    note = CoordinationNote(from_agent=allocated, to_agent=noted, topic="t", content={"n": 7})
    await probe.bus.publish(topology.COORDINATION, note, routing_key=note_key(noted))

    async def allocation_taken() -> bool:
        return bool((await audit(rest, allocated))["allocation"] == 5)

    async def note_kept() -> list[Any]:
        inbox: list[Any] = (await audit(rest, noted, "state_dump"))["inbox"]
        return inbox

    await eventually(allocation_taken, timeout=30, what="the allocation at its agent")
    inbox = await eventually(note_kept, timeout=30, what="the note at its agent")
    assert inbox[0]["content"] == {"n": 7}
    assert (await audit(rest, noted))["allocation"] != 5
    assert (await audit(rest, allocated, "state_dump"))["inbox"] == []


async def test_two_replicas_split_the_partitions_and_a_third_takes_a_share(
    rest: httpx.AsyncClient, system: LocalSystem
) -> None:
    chosen = await one_per_partition(rest)
    add_replica(system)

    async def split() -> dict[int, str] | None:
        served = await serving(rest, chosen)
        return served if len(set(served.values())) == live_replicas(system) else None

    served = await eventually(split, timeout=120, interval=1, what="two replicas")
    assert len(served) == PARTITIONS

    add_replica(system)
    served = await eventually(split, timeout=120, interval=1, what="three replicas")
    assert min(Counter(served.values()).values()) >= 1
    # Every agent of one partition is served where its partition is.
    for agent_id in (await fleet_ids(rest))[PARTITIONS : PARTITIONS * 3]:
        partition = partition_of(agent_id, PARTITIONS)
        report = await audit(rest, agent_id)
        assert report["partition"] == partition
        assert report["instance"] in set(served.values())


async def test_killing_a_serving_replica_loses_no_command_and_its_agents_answer_again(
    rest: httpx.AsyncClient, probe: Probe, system: LocalSystem
) -> None:
    agents = (await fleet_ids(rest))[:50]
    while live_replicas(system) < 2:  # one left to take over from the one killed
        add_replica(system)
    reports = await gathered([audit(rest, a) for a in agents])
    where = Counter(r["instance"] for r in reports)
    victim = int(where.most_common(1)[0][0].rsplit("-", 1)[1])
    pids = {s.processes["operations"].pid for s in [system, *REPLICAS]}
    assert victim in pids

    results = await probe.bind_queue("kill-results", topology.S1_RESULTS.name)
    sent = []
    for index in range(300):
        if index == 100:
            os.kill(victim, signal.SIGKILL)
        agent_id = agents[index % len(agents)]
        one = AgentCommand(command_type="process_data", data={"data": index})
        sent.append(one.command_id)
        key = command_key("worker", agent_id, "process_data")
        await probe.publish_raw(topology.S1_COMMANDS.name, raw_envelope(one), key)

    seen: set[str] = set()
    while not seen >= set(sent):
        result = AnyEnvelope.validate_json((await probe.get(results, timeout=60)).body).data
        assert isinstance(result, CommandResult)
        if result.command_id in sent:
            assert result.status == "ok"
            seen.add(result.command_id)

    answers = await asyncio.wait_for(gathered([command(rest, a) for a in agents]), timeout=10)
    assert all(answer["status"] == "ok" for answer in answers)
    after = await gathered([audit(rest, a) for a in agents])
    assert victim not in {int(r["instance"].rsplit("-", 1)[1]) for r in after}
