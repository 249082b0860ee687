"""S2 on the real broker: fair-share scheduling under a flood, equal lanes, rescheduling after
an allocation change, oscillation and damping, the oscillation index, coordinated notes,
bad work. One system (seven processes) serves the module; every test spawns its own agents
and uses lanes of its own."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.cleanup import delete_namespace
from tests.support.probe import Probe
from tests.support.system import launch
from vsm.contract import topology
from vsm.contract.control import AllocationChanged, Resources, allocation_key
from vsm.contract.coordination import (
    OSCILLATION_INDEX_KEY,
    CoordinationNote,
    Damping,
    OscillationDetected,
    OscillationIndex,
    Rescheduled,
    WorkItem,
    damping_key,
    note_key,
    oscillation_key,
    rescheduled_key,
    work_key,
)
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping, Pong
from vsm.contract.operations import CommandResult, earlier_command_queue, results_exchange
from vsm.kit.bus import AnyEnvelope
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

SPAWNED: list[str] = []


@pytest.fixture(scope="module")
def system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """The seven services, S2 reporting its oscillation index twice a second."""
    running = launch(amqp_url, tmp_path_factory.mktemp("logs"), OSCILLATION_INTERVAL_S="0.5")
    yield running
    running.stop()
    queues = [
        n
        for a in SPAWNED
        for n in (earlier_command_queue(a).name, earlier_command_queue(a).dead_letter_queue)
    ]
    exchanges = [results_exchange(a).name for a in SPAWNED]
    namespace = running.env["VSM_NAMESPACE"]
    asyncio.run(delete_namespace(amqp_url, namespace, queues=queues, exchanges=exchanges))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def spawn(gateway: httpx.AsyncClient, slots: int) -> str:
    config = {"allocation": slots, "max_allocation": 16}
    response = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": config})
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["agent_id"]
    SPAWNED.append(agent_id)
    return agent_id


@dataclass
class Results:
    """Each result on one agent's results exchange: command id -> when it was seen, in order."""

    seen: dict[str, float] = field(default_factory=dict)
    failed: list[CommandResult] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        result = AnyEnvelope.validate_json(message.body).data
        if isinstance(result, CommandResult):
            self.seen[result.command_id] = time.monotonic()
            if result.status != "ok":
                self.failed.append(result)
        self.arrived.set()

    async def wait_for(self, wanted: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not wanted():
                self.arrived.clear()
                await self.arrived.wait()


async def watch_results(probe: Probe, agent_id: str) -> Results:
    results = Results()
    queue = await probe.channel.declare_queue(
        probe.namespace.name(unique("results")), exclusive=True, auto_delete=True
    )
    await queue.bind(probe.namespace.name(results_exchange(agent_id).name), routing_key="#")
    await queue.consume(results.on_message, no_ack=True)
    return results


async def submit(probe: Probe, lane: str, weight: int, agent_id: str, count: int) -> list[str]:
    """Publish `count` work items (confirmed) on `vsm.coordination`; their command ids."""
    ids = [f"{lane}-{n}" for n in range(count)]
    for start in range(0, count, 200):
        batch = ids[start : start + 200]
        await asyncio.gather(
            *(
                probe.bus.publish(
                    topology.COORDINATION,
                    WorkItem(
                        lane=lane,
                        weight=weight,
                        agent_id=agent_id,
                        command_id=command_id,
                        command_type="process_data",
                        data={"data": {"n": command_id}},
                    ),
                    routing_key=work_key(lane),
                )
                for command_id in batch
            )
        )
    return ids


async def observe(probe: Probe, routing_key: str) -> str:
    return await probe.bind_queue(unique("observe"), topology.COORDINATION.name, routing_key)


async def next_body(probe: Probe, queue: str, timeout: float = 15.0) -> Envelope[Any]:
    return AnyEnvelope.validate_json((await probe.get(queue, timeout=timeout)).body)


def allocation(agent_id: str, slots: int, rate: float | None = None) -> AllocationChanged:
    return AllocationChanged(
        agent_id=agent_id,
        agent_type="worker",
        resources=Resources(concurrency_slots=slots),
        max_rate_per_s=rate,
        reason="integration test",
    )


async def allocate(probe: Probe, change: AllocationChanged) -> Envelope[Any]:
    return await probe.bus.publish(
        topology.CONTROL, change, routing_key=allocation_key(change.agent_id)
    )


@pytest.mark.timeout(300)  # thousands of items through seven processes on a shared machine
async def test_a_100_to_1_flood_serves_the_low_lane_within_5_s(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=2)
    # Paced, so that the flood outlasts the trickle below however fast the machine serves it
    # (3,000 items at 100/s: 30 s; the trickle takes 15 s).
    paced = await observe(system_probe, rescheduled_key(agent_id))
    await allocate(system_probe, allocation(agent_id, 2, rate=100.0))
    assert (await next_body(system_probe, paced)).data.max_rate_per_s == 100.0
    results = await watch_results(system_probe, agent_id)
    flood_lane, low_lane = unique("flood"), unique("low")

    started = time.monotonic()
    flood = await submit(system_probe, flood_lane, 100, agent_id, 3000)
    published_s = time.monotonic() - started
    sent: dict[str, float] = {}
    for n in range(10):
        command_id = f"{low_lane}-{n}"
        sent[command_id] = time.monotonic()
        await submit_one(system_probe, low_lane, agent_id, command_id)
        await asyncio.sleep(1.5)  # a trickle, within what aging guarantees a light lane
    await results.wait_for(lambda: all(c in results.seen for c in sent), timeout=60)

    latencies = [results.seen[c] - sent[c] for c in sent]
    first_low = min(results.seen[c] for c in sent)
    flood_after = sum(1 for c in flood if results.seen.get(c, float("inf")) > first_low)
    flood_times = [results.seen[c] for c in flood if c in results.seen]
    rate = len(flood_times) / (max(flood_times) - min(flood_times))
    print(
        f"\n100:1 flood of {len(flood)} (published in {published_s:.1f} s, served at "
        f"{rate:.0f} dispatches/s): first low item served in "
        f"{latencies[0]:.3f} s; low latencies max {max(latencies):.3f} s, mean "
        f"{sum(latencies) / len(latencies):.3f} s; {flood_after} flood items were still to be "
        "served after the first low one"
    )
    assert results.failed == []
    assert flood_after > 0, "the flood was over before the low lane came: not a flood test"
    assert latencies[0] < 5.0
    assert max(latencies) < 5.0
    paused = await pause(system_probe, agent_id)  # the rest of the flood waits, unacked
    assert paused.queued > 0


async def pause(probe: Probe, agent_id: str) -> Rescheduled:
    """Zero slots: S2 stops dispatching to the agent and keeps holding its work."""
    rescheduled = await observe(probe, rescheduled_key(agent_id))
    await allocate(probe, allocation(agent_id, 0))
    event = await next_body(probe, rescheduled)
    assert isinstance(event.data, Rescheduled)
    assert event.data.capacity == 0
    return event.data


async def submit_one(probe: Probe, lane: str, agent_id: str, command_id: str) -> None:
    item = WorkItem(
        lane=lane,
        agent_id=agent_id,
        command_id=command_id,
        command_type="process_data",
        data={"data": command_id},
    )
    await probe.bus.publish(topology.COORDINATION, item, routing_key=work_key(lane))


async def test_three_equal_lanes_are_served_within_3x_of_each_other(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=4)
    results = await watch_results(system_probe, agent_id)
    rescheduled = await observe(system_probe, rescheduled_key(agent_id))
    await allocate(system_probe, allocation(agent_id, 4, rate=40.0))  # slow, so lanes contend
    await next_body(system_probe, rescheduled)

    lanes = [unique(name) for name in ("a", "b", "c")]
    sent = {lane: await submit(system_probe, lane, 1, agent_id, 120) for lane in lanes}
    all_queued = time.monotonic()
    everything = [c for ids in sent.values() for c in ids]
    await results.wait_for(lambda: all(c in results.seen for c in everything), timeout=60)

    first_drained = min(max(results.seen[c] for c in ids) for ids in sent.values())
    counts = {
        lane: sum(1 for c in ids if all_queued < results.seen[c] <= first_drained)
        for lane, ids in sent.items()
    }
    print(f"\nthree equal lanes, dispatches while all three waited: {list(counts.values())}")
    assert results.failed == []
    assert min(counts.values()) > 0
    assert max(counts.values()) <= 3 * min(counts.values())


async def test_an_allocation_change_reschedules_the_agent(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=2)
    rescheduled = await observe(system_probe, rescheduled_key(agent_id))

    cause = await allocate(system_probe, allocation(agent_id, 5, rate=20.0))

    event = await next_body(system_probe, rescheduled)
    assert isinstance(event.data, Rescheduled)
    assert (event.data.capacity, event.data.max_rate_per_s) == (5, 20.0)
    assert event.causation_id == cause.id
    state = (await gateway.get("/api/vsm/system/2")).json()
    assert state["capacity"][agent_id] == 5
    assert state["in_flight"][agent_id] == 0


async def test_alternating_allocations_are_detected_and_damped_once(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=2)
    detected = await observe(system_probe, oscillation_key(agent_id))
    damped = await observe(system_probe, damping_key(agent_id))
    indices = await observe(system_probe, OSCILLATION_INDEX_KEY)

    causes = [await allocate(system_probe, allocation(agent_id, s)) for s in (4, 2, 4, 2, 4, 2, 4)]

    oscillation = await next_body(system_probe, detected)
    assert isinstance(oscillation.data, OscillationDetected)
    assert oscillation.data.signal == "allocation"
    assert oscillation.data.reversals >= 3
    damping = await next_body(system_probe, damped)
    assert isinstance(damping.data, Damping)
    assert damping.data.subject == agent_id
    assert damping.causation_id == oscillation.causation_id == causes[3].id  # the 3rd reversal
    assert damping.data.until.timestamp() > time.time() + 20
    state = (await gateway.get("/api/vsm/system/2")).json()
    assert agent_id in state["damped"]
    assert agent_id in state["flapping"]

    async with asyncio.timeout(15):
        while True:
            index = await next_body(system_probe, indices)
            assert isinstance(index.data, OscillationIndex)
            if agent_id in index.data.flapping:
                break
    assert index.vsm_id == "root"
    assert index.data.index > 0
    with pytest.raises(TimeoutError):  # hysteresis: no second damping while it cools down
        await system_probe.get(damped, timeout=2)


async def test_the_oscillation_index_is_reported_for_s5(system_probe: Probe) -> None:
    indices = await observe(system_probe, OSCILLATION_INDEX_KEY)

    report = await next_body(system_probe, indices)

    assert isinstance(report.data, OscillationIndex)
    assert report.source == "vsm/coordinator"
    assert 0.0 <= report.data.index <= 1.0


async def test_a_note_to_an_unknown_agent_is_refused_with_404(
    gateway: httpx.AsyncClient,
) -> None:
    sender = await spawn(gateway, slots=1)
    note = {"from_agent": sender, "to_agent": "ghost-0000", "topic": "handover", "content": {}}

    response = await gateway.post("/api/vsm/coordination/messages", json=note)

    assert response.status_code == 404, response.text
    assert response.json()["error"] == "unknown_agent"
    assert "ghost-0000" in response.json()["message"]


async def test_a_note_between_two_agents_is_published_and_receipted(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    sender, addressee = await spawn(gateway, slots=1), await spawn(gateway, slots=1)
    notes = await observe(system_probe, note_key(addressee))
    content = {"batch": 7, "ready": True}
    note = {"from_agent": sender, "to_agent": addressee, "topic": "handover", "content": content}

    response = await gateway.post("/api/vsm/coordination/messages", json=note)

    assert response.status_code == 200, response.text
    receipt = response.json()
    assert (receipt["from_agent"], receipt["to_agent"]) == (sender, addressee)
    published = await next_body(system_probe, notes)
    assert isinstance(published.data, CoordinationNote)
    assert published.id == receipt["note_id"]
    assert (published.data.topic, published.data.content) == ("handover", content)
    state = (await gateway.get("/api/vsm/system/2")).json()
    assert state["notes_delivered"] >= 1


async def test_work_submitted_over_rest_or_with_reply_to_gets_its_result(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=1)
    results = await watch_results(system_probe, agent_id)
    body = {"lane": unique("rest"), "agent_id": agent_id, "command_type": "process_data"}

    accepted = await gateway.post("/api/vsm/work", json=body | {"data": {"data": [1, 2]}})
    assert accepted.status_code == 202, accepted.text
    command_id = accepted.json()["command_id"]
    await results.wait_for(lambda: command_id in results.seen, timeout=15)

    item = WorkItem(
        lane=unique("ask"),
        agent_id=agent_id,
        command_id=unique("c"),
        command_type="analyze",
        data={"values": [1, 2, 3]},
    )
    reply = await system_probe.bus.ask(
        item, exchange=topology.COORDINATION, routing_key=work_key(item.lane), timeout=15
    )
    assert isinstance(reply.data, CommandResult)
    assert reply.data.command_id == item.command_id
    assert reply.data.result is not None
    assert reply.data.result["count"] == 3
    invalid = await gateway.post("/api/vsm/work", json=body | {"lane": "Not A Lane"})
    assert invalid.status_code == 422


async def test_work_waiting_for_a_terminated_agent_is_dead_lettered(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawn(gateway, slots=1)
    await pause(system_probe, agent_id)
    lane = unique("doomed")
    waiting = set(await submit(system_probe, lane, 1, agent_id, 3))
    await queued_in(gateway, lane, len(waiting))

    assert (await gateway.delete(f"/api/vsm/agents/{agent_id}")).status_code == 200

    parked: set[str] = set()
    async with asyncio.timeout(15):
        while parked != waiting:
            message = await system_probe.get(topology.SYSTEM2_WORK.dead_letter_queue)
            item = AnyEnvelope.validate_json(message.body).data
            if isinstance(item, WorkItem) and item.command_id in waiting:
                assert message.headers[REASON_HEADER] == "agent_terminated"
                parked.add(item.command_id)
    state = (await gateway.get("/api/vsm/system/2")).json()
    assert agent_id not in state["capacity"]


async def queued_in(gateway: httpx.AsyncClient, lane: str, count: int) -> None:
    """Wait until S2 holds `count` items in `lane`."""
    async with asyncio.timeout(15):
        while True:
            lanes = (await gateway.get("/api/vsm/system/2")).json()["lanes"]
            if any(entry["lane"] == lane and entry["queued"] == count for entry in lanes):
                return
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("reason", "body"),
    [
        ("malformed_json", lambda agent_id: b'{"lane": '),
        ("invalid_schema", lambda agent_id: _work(agent_id, lane="NO SPACES")),
        ("unknown_agent", lambda agent_id: _work("ghost-0000")),
    ],
)
async def test_bad_work_is_dead_lettered_with_its_reason_and_s2_stays_up(
    system_probe: Probe,
    gateway: httpx.AsyncClient,
    reason: str,
    body: Callable[[str], bytes],
) -> None:
    agent_id = await spawn(gateway, slots=1)
    bad = body(agent_id)

    await system_probe.publish_raw(topology.COORDINATION.name, bad, routing_key="work.bad")

    parked = await system_probe.get_matching(
        topology.SYSTEM2_WORK.dead_letter_queue, lambda message: message.body == bad
    )
    assert parked.headers[REASON_HEADER] == reason
    reply = await system_probe.bus.request("coordinator", "ping", Ping())
    assert isinstance(reply.data, Pong)
    assert (await gateway.get("/api/vsm/system/2")).status_code == 200


def _work(agent_id: str, lane: str = "bad") -> bytes:
    item = {"lane": lane, "agent_id": agent_id, "command_id": unique("c")}
    envelope = {
        "id": unique("id"),
        "source": "test",
        "type": WorkItem.TYPE,
        "time": "2025-01-01T00:00:00Z",
        "data": item | {"command_type": "process_data"},
    }
    return json.dumps(envelope).encode()
