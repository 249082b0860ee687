"""Nothing decided is forgotten: S3's budgets, carved child budgets and grants survive a restart
of `control` (SIGTERM and SIGKILL), S2's lane weights and damping a restart of `coordinator`,
each read back from the service's journal on the broker (`vsm.kit.journal`). The services
sign (as every consumer verifies): a journal entry that does not verify stops `control`'s
start-up naming it, until the operator disowns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.security.signed import KEYS
from tests.support.faults import Report
from tests.support.polling import eventually
from tests.support.system import launch, shut_down
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.control import BudgetRecord, Resources, System3Snapshot
from vsm.contract.coordination import System2Snapshot
from vsm.contract.envelope import Envelope
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(900)]

SERVICES = ["queen", "control", "coordinator", "operations", "mcp-gateway"]
CHILD = "root/journal"
ROOT_BUDGET = {
    "concurrency_slots": 40,
    "llm_tokens_per_min": 50_000,
    "memory_mb": 4096,
    "llm_usd_per_day": 10.0,
}
CARVED = {
    "concurrency_slots": 6,
    "llm_tokens_per_min": 2000,
    "memory_mb": 512,
    "llm_usd_per_day": 2.0,
}
CHILD_OWN = {
    "concurrency_slots": 4,
    "llm_tokens_per_min": 1500,
    "memory_mb": 256,
    "llm_usd_per_day": 1.5,
}
JOURNAL = topology.SYSTEM3_JOURNAL.name


@pytest.fixture(scope="module")
def system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        ready_within_s=240,
        services=SERVICES,
        VSM_SIGNING_KEYS=KEYS,
        DAMPING_COOLDOWN_S="900",  # the damping outlives every restart of the module
        AUDIT_INTERVAL="3600",
    )
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
async def gateway(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=30) as client:
        yield client


def restart(system: LocalSystem, service: str, sig: signal.Signals) -> None:
    process = system.processes[service]
    system.kill(service, sig)
    process.wait(timeout=60)
    system.start([service])
    system.wait_ready(timeout=240, services=[service])


async def spawn(gateway: httpx.AsyncClient, slots: int = 1) -> str:
    reply = await gateway.post(
        "/api/vsm/agents", json={"type": "worker", "config": {"allocation": slots}}
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["agent_id"])


async def s3(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    """What S3 decided for `vsm_id` (the last audit is an observation, not a decision)."""
    reply = await gateway.get("/api/vsm/system/3", params={"vsm_id": vsm_id})
    assert reply.status_code == 200, reply.text
    state = dict(reply.json())
    state.pop("last_audit", None)
    return state


async def decided(gateway: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {vsm_id: await s3(gateway, vsm_id) for vsm_id in ("root", CHILD)}


async def allocate(gateway: httpx.AsyncClient, agent_id: str, slots: int, priority: int) -> None:
    reply = await gateway.post(
        "/api/vsm/system/3/allocations",
        json={
            "agent_id": agent_id,
            "resources": {"concurrency_slots": slots, "memory_mb": 128},
            "priority": priority,
            "reason": "journal test",
        },
    )
    assert reply.status_code == 200, reply.text


AGENTS: list[str] = []


async def test_budgets_carves_and_grants_survive_sigterm_and_sigkill_of_control(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    AGENTS.extend([await spawn(gateway), await spawn(gateway)])
    first, second = AGENTS
    budget = await gateway.put("/api/vsm/system/3/budget", json=ROOT_BUDGET)
    assert budget.status_code == 200, budget.text
    child = await gateway.post(
        "/api/vsm/meta-systems",
        params={"vsm_id": "root"},
        json={"name": "journal", "purpose": "remember", "budget": CARVED},
    )
    assert child.status_code == 201, child.text
    own = await gateway.put("/api/vsm/system/3/budget", params={"vsm_id": CHILD}, json=CHILD_OWN)
    assert own.status_code == 200, own.text
    await allocate(gateway, first, 5, priority=7)

    async def both_known() -> dict[str, dict[str, Any]] | None:
        state = await decided(gateway)
        held = {a["agent_id"]: a for a in state["root"]["allocations"]}
        return state if {first, second} <= set(held) else None

    before = await eventually(both_known, timeout=30.0, what="S3 knowing both agents")
    held = {a["agent_id"]: a for a in before["root"]["allocations"]}
    assert before["root"]["budget"] == ROOT_BUDGET
    assert before["root"]["children"] == {CHILD: CHILD_OWN}
    assert before[CHILD]["budget"] == CHILD_OWN
    assert held[first]["resources"]["concurrency_slots"] == 5
    assert held[first]["priority"] == 7

    restart(system, "control", signal.SIGTERM)
    assert await decided(gateway) == before

    await allocate(gateway, second, 3, priority=2)
    changed = await decided(gateway)
    assert changed != before
    restart(system, "control", signal.SIGKILL)
    assert await decided(gateway) == changed


async def test_every_grant_answered_before_a_sigkill_of_control_is_kept(
    system: LocalSystem, gateway: httpx.AsyncClient, report: Report
) -> None:
    """Grants keep coming, one at a time, each asking more slots than the one before; control
    is SIGKILLed among them. After the restart the agent holds at least what the last answered
    grant gave it (and no more than the last one asked: that one may have been decided, and
    journaled, without its answer getting out)."""
    agent = AGENTS[0]
    answered: list[int] = []
    asked: list[int] = []
    killed = asyncio.Event()

    async def grants() -> None:
        for slots in range(6, 36):
            if killed.is_set():
                return
            asked.append(slots)
            wanted = {"agent_id": agent, "resources": {"concurrency_slots": slots}, "priority": 7}
            with contextlib.suppress(httpx.HTTPError):
                reply = await gateway.post("/api/vsm/system/3/allocations", json=wanted)
                if reply.status_code == 200:
                    answered.append(reply.json()["granted"]["concurrency_slots"])

    async def five() -> bool | None:
        await asyncio.sleep(0.05)
        return len(answered) >= 5 or None

    sending = asyncio.create_task(grants())
    await eventually(five, timeout=60.0, what="five grants answered")
    system.kill("control", signal.SIGKILL)
    killed.set()
    await asyncio.to_thread(system.processes["control"].wait, 60)
    await sending
    last_answered = answered[-1]
    system.start(["control"])
    await asyncio.to_thread(system.wait_ready, 240, ["control"])

    held = {a["agent_id"]: a for a in (await s3(gateway, "root"))["allocations"]}
    slots = held[agent]["resources"]["concurrency_slots"]
    report(
        "control_sigkill_under_grants",
        asked=len(asked),
        answered=len(answered),
        last_answered=last_answered,
        held_after_restart=slots,
        last_asked=asked[-1],
    )
    assert last_answered <= slots <= asked[-1]


async def test_an_agent_terminated_just_before_a_sigkill_of_control_stays_gone(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    """S3 keeps registry events in its journal at its release tick; an agent the journal
    still had when control died is closed at start-up, since S1's registry runs it no more."""
    doomed = await spawn(gateway)

    async def known() -> bool | None:
        held = {a["agent_id"] for a in (await s3(gateway, "root"))["allocations"]}
        return doomed in held or None

    await eventually(known, timeout=30.0, what="S3 knowing the agent")
    await asyncio.sleep(1.0)  # the release tick has journaled it
    gone = await gateway.delete(f"/api/vsm/agents/{doomed}")
    assert gone.status_code in {200, 204}, gone.text
    system.kill("control", signal.SIGKILL)
    await asyncio.to_thread(system.processes["control"].wait, 60)
    system.start(["control"])
    await asyncio.to_thread(system.wait_ready, 240, ["control"])

    async def closed() -> bool | None:
        held = {a["agent_id"] for a in (await s3(gateway, "root"))["allocations"]}
        return doomed not in held or None

    await eventually(closed, timeout=30.0, what="the terminated agent's account closed")


async def s2(gateway: httpx.AsyncClient) -> dict[str, Any]:
    reply = await gateway.get("/api/vsm/system/2")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def kept(state: dict[str, Any]) -> dict[str, Any]:
    """S2's decisions: each lane's weight and dispatches, and who is damped until when."""
    lanes = {lane["lane"]: (lane["weight"], lane["dispatched"]) for lane in state["lanes"]}
    return {"lanes": lanes, "damped": state["damped"]}


async def test_lane_weights_and_damping_survive_a_restart_of_coordinator(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    agent = AGENTS[1] if AGENTS else await spawn(gateway)
    for lane, weight in (("journal-heavy", 7), ("journal-light", 2)):
        work = {
            "lane": lane,
            "weight": weight,
            "agent_id": agent,
            "command_type": "process_data",
            "data": {"data": {"lane": lane}},
        }
        accepted = await gateway.post("/api/vsm/work", json=work)
        assert accepted.status_code == 202, accepted.text
    for slots in (2, 1, 2, 1, 2, 1):  # up and down: allocation reversals make S2 damp it
        wanted = {"agent_id": agent, "resources": {"concurrency_slots": slots}, "priority": 2}
        reply = await gateway.post("/api/vsm/system/3/allocations", json=wanted)
        if reply.status_code == 409 and reply.json()["error"] == "damped":
            break  # S3 obeys S2's damping already
        assert reply.status_code == 200, reply.text

    async def settled() -> dict[str, Any] | None:
        state = kept(await s2(gateway))
        lanes = state["lanes"]
        done = all(lanes.get(name, (0, 0))[1] >= 1 for name in ("journal-heavy", "journal-light"))
        return state if done and agent in state["damped"] else None

    before = await eventually(settled, timeout=60.0, what="both lanes served and the agent damped")
    assert before["lanes"]["journal-heavy"][0] == 7
    assert before["lanes"]["journal-light"][0] == 2

    restart(system, "coordinator", signal.SIGKILL)

    assert kept(await s2(gateway)) == before
    # S3 heard the damping too, and keeps it across its own restart.
    assert agent in (await s3(gateway, "root"))["damped"]
    restart(system, "control", signal.SIGTERM)
    assert agent in (await s3(gateway, "root"))["damped"]


def start_fails(system: LocalSystem, service: str) -> str:
    """Restart `service`; it must exit: the lines it logged while starting."""
    log = system.log(service)
    size = log.stat().st_size
    process = system.processes[service]
    process.terminate()
    process.wait(timeout=60)
    system.start([service])
    try:
        code = system.processes[service].wait(timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{service} started on a journal entry that does not verify")
    assert code != 0
    return log.read_text(errors="replace")[size:]


def refused(log: str, journal: str = JOURNAL) -> dict[str, Any]:
    for line in log.splitlines():
        if '"log_entry_refused"' in line:
            event: dict[str, Any] = json.loads(line)
            if event["stream"] == journal:
                return event
    raise AssertionError(f"no log_entry_refused of {journal}:\n{log[-3000:]}")


async def test_an_unsigned_journal_entry_stops_start_up_until_the_operator_disowns_it(
    amqp_url: str, system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    before = await decided(gateway)
    forged = System3Snapshot(
        budgets=[BudgetRecord(vsm_id="root", budget=Resources(concurrency_slots=99_999))]
    )
    envelope = Envelope.wrap(forged, source="vsm/control")
    namespace = Namespace(system.env["VSM_NAMESPACE"])
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=envelope.id),
            routing_key=namespace.name(JOURNAL),
        )

    log = start_fails(system, "control")

    event = refused(log)
    assert event["message_id"] == envelope.id
    assert "is not signed" in event["detail"]
    skip = f"{JOURNAL}@{event['offset']}"
    assert f"VSM_LOG_SKIP={skip}" in event["detail"]
    assert "Application startup failed" in log

    disowned = dataclasses.replace(system, env={**system.env, "VSM_LOG_SKIP": skip})
    disowned.start(["control"])
    disowned.wait_ready(timeout=240, services=["control"])
    assert await decided(gateway) == before


async def last_snapshot(channel: aio_pika.abc.AbstractChannel, stream: str) -> aio_pika.Message:
    """The journal's last snapshot as the broker keeps it (body and signature headers)."""
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(stream, passive=True)
    entries: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    await queue.consume(entries.put, arguments={"x-stream-offset": "first"})
    found = None
    with contextlib.suppress(TimeoutError):
        while True:
            entry = await asyncio.wait_for(entries.get(), timeout=2.0)
            await entry.ack()
            if entry.type == System2Snapshot.TYPE:
                found = entry
    assert found is not None, f"no snapshot in {stream}"
    return aio_pika.Message(found.body, headers=dict(found.headers), message_id="tampered-s2")


async def test_a_tampered_journal_entry_stops_coordinator_until_the_operator_disowns_it(
    amqp_url: str, system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    before = kept(await s2(gateway))
    assert before["lanes"]["journal-heavy"][0] == 7
    stream = Namespace(system.env["VSM_NAMESPACE"]).name(topology.SYSTEM2_JOURNAL.name)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        genuine = await last_snapshot(await connection.channel(), stream)
        weight = b'"weight":7'
        tampered = genuine.body.replace(weight, b'"weight":9')  # the heavy lane heavier still
        assert tampered != genuine.body
        forged = aio_pika.Message(tampered, headers=genuine.headers, message_id="tampered-s2")
        await (await connection.channel()).default_exchange.publish(forged, routing_key=stream)

    log = start_fails(system, "coordinator")

    journal = topology.SYSTEM2_JOURNAL.name
    event = refused(log, journal)
    assert event["message_id"] == "tampered-s2"
    assert "does not match" in event["detail"]
    skip = f"{journal}@{event['offset']}"
    assert f"VSM_LOG_SKIP={skip}" in event["detail"]

    disowned = dataclasses.replace(system, env={**system.env, "VSM_LOG_SKIP": skip})
    disowned.start(["coordinator"])
    disowned.wait_ready(timeout=240, services=["coordinator"])
    assert kept(await s2(gateway)) == before
