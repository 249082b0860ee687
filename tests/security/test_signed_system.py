"""The seven services sharing signing keys, on a real broker: they work together as before;
a tampered or replayed message published raw is parked with its reason, logged as a security
event and counted, and has no effect; every service stays up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import KEYS, copy, flip, launch_system, publish
from tests.support.polling import eventually
from tests.support.system import shut_down
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.operations import (
    earlier_command_queue,
    partition_of,
    partition_queue,
    results_exchange,
)
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER
from vsm.kit.names import Namespace
from vsm.kit.signing import KEY_ID_HEADER, SIGNATURE_HEADER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]  # start-up included


@pytest.fixture(scope="module")
def system(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    running = launch_system(amqp_url, tmp_path_factory.mktemp("logs"), VSM_SIGNING_KEYS=KEYS)
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
def namespace(system: LocalSystem) -> Namespace:
    return Namespace(system.env["VSM_NAMESPACE"])


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


@pytest.fixture
async def gateway(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=10) as client:
        yield client


async def capture(
    channel: AbstractChannel, namespace: Namespace, exchange: str, routing_key: str = "#"
) -> aio_pika.abc.AbstractQueue:
    """An exclusive queue that sees what flows on `exchange` (as the broker delivers it)."""
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(namespace.name(exchange), routing_key=routing_key)
    return queue


async def next_message(queue: aio_pika.abc.AbstractQueue) -> AbstractIncomingMessage:
    async def got() -> AbstractIncomingMessage | None:
        return await queue.get(no_ack=True, fail=False)

    return await eventually(got, timeout=10.0, interval=0.05, what="a captured message")


async def parked(
    channel: AbstractChannel, namespace: Namespace, queue: topology.Queue, body: bytes
) -> AbstractIncomingMessage:
    """The dead letter of `body` on `queue`'s DLQ (others there are left alone)."""
    dlq = await channel.get_queue(namespace.name(queue.dead_letter_queue), ensure=False)

    async def find() -> AbstractIncomingMessage | None:
        message = await dlq.get(no_ack=False, fail=False)
        if message is None:
            return None
        if message.body == body:
            await message.ack()
            return message
        await message.nack(requeue=True)
        return None

    return await eventually(find, timeout=15.0, interval=0.05, what=f"a dead letter on {dlq}")


async def refusals(system: LocalSystem, service: str, reason: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{system.scrape_address(service)}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vsm_security_refusals_total{") and f'reason="{reason}"' in line
    )


def security_events(system: LocalSystem, service: str) -> list[dict[str, Any]]:
    log = Path(system.log_dir) / f"{service}.log"
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if '"security_event"' in line:
            events.append(json.loads(line))
    return events


async def all_up(gateway: httpx.AsyncClient) -> dict[str, Any]:
    async def up() -> dict[str, Any] | None:
        response = await gateway.get("/api/vsm/status")
        if response.status_code != 200:
            return None
        status: dict[str, Any] = response.json()
        states = {c["service"]: c["state"] for c in status["components"]}
        return status if set(states.values()) == {"up"} and list(states) == list(SERVICES) else None

    return await eventually(up, timeout=30.0, what="every service up")


async def test_a_keyed_system_works_as_before(
    system: LocalSystem, gateway: httpx.AsyncClient, channel: AbstractChannel, namespace: Namespace
) -> None:
    """Heartbeats reach S5, REST calls become signed requests and signed replies."""
    heartbeats = await capture(channel, namespace, topology.HEALTH.name)
    beat = await next_message(heartbeats)

    assert beat.headers[KEY_ID_HEADER] == "k1"
    assert beat.headers[SIGNATURE_HEADER]
    await all_up(gateway)
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    for service in SERVICES:
        assert security_events(system, service) == []


async def test_a_tampered_heartbeat_is_parked_as_bad_signature_by_s5_and_s4(
    system: LocalSystem, channel: AbstractChannel, namespace: Namespace
) -> None:
    heartbeats = await capture(channel, namespace, topology.HEALTH.name)
    beat = await next_message(heartbeats)
    tampered = flip(copy(beat), b'"state":"up"', offset=9)  # -> "Up"
    before = await refusals(system, "queen", "bad_signature")

    await publish(channel, namespace, topology.HEALTH.name, tampered)

    for queue in (topology.SYSTEM5_HEALTH, topology.SYSTEM4_HEALTH):
        bad = await parked(channel, namespace, queue, tampered.body)
        assert bad.headers[REASON_HEADER] == "bad_signature"
    assert await refusals(system, "queen", "bad_signature") == before + 1
    event = security_events(system, "queen")[-1]
    assert event["reason"] == "bad_signature"
    assert event["level"] == "warning"
    assert event["message_id"] == beat.message_id


async def test_a_replayed_request_is_parked_and_spawns_nothing(
    system: LocalSystem,
    gateway: httpx.AsyncClient,
    channel: AbstractChannel,
    namespace: Namespace,
) -> None:
    requests = await capture(channel, namespace, topology.REQUESTS.name, "operations.spawn")
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    request = await next_message(requests)
    agents = len((await gateway.get("/api/vsm/agents")).json())
    replay = copy(request)

    await publish(channel, namespace, topology.REQUESTS.name, replay, "operations.spawn")

    bad = await parked(channel, namespace, topology.requests_queue("operations"), replay.body)
    assert bad.headers[REASON_HEADER] == "replayed"
    await asyncio.sleep(1.0)
    assert len((await gateway.get("/api/vsm/agents")).json()) == agents
    assert security_events(system, "operations")[-1]["reason"] == "replayed"


async def test_a_tampered_request_is_parked_and_spawns_nothing(
    gateway: httpx.AsyncClient, channel: AbstractChannel, namespace: Namespace
) -> None:
    requests = await capture(channel, namespace, topology.REQUESTS.name, "operations.spawn")
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    request = await next_message(requests)
    agents = len((await gateway.get("/api/vsm/agents")).json())
    # A new id (so it is no replay) under the old signature: a forgery.
    letter = next(i for i, c in enumerate(request.message_id or "") if c.isalpha())
    forged = flip(copy(request), f'"id":"{request.message_id}"'.encode(), offset=6 + letter)

    await publish(channel, namespace, topology.REQUESTS.name, forged, "operations.spawn")

    bad = await parked(channel, namespace, topology.requests_queue("operations"), forged.body)
    assert bad.headers[REASON_HEADER] == "bad_signature"
    await asyncio.sleep(1.0)
    assert len((await gateway.get("/api/vsm/agents")).json()) == agents


async def test_a_tampered_command_to_an_agent_is_parked_and_the_agent_still_answers(
    system: LocalSystem, gateway: httpx.AsyncClient, channel: AbstractChannel, namespace: Namespace
) -> None:
    """Agents' queues are consumed directly (not by FastStream): the same checks apply."""
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    agent = spawned.json()["agent_id"]
    commands = await capture(channel, namespace, topology.S1_COMMANDS.name, f"*.{agent}.*")
    results = await capture(channel, namespace, results_exchange(agent).name)
    command = {"type": "process_data", "data": {"data": {"text": "signed"}}}
    done = await gateway.post(f"/api/vsm/agents/{agent}/command", json=command)
    assert done.status_code == 200, done.text
    sent = await next_message(commands)
    await next_message(results)
    tampered = flip(copy(sent), b'"text":"signed"', offset=8)  # -> "Signed"
    before = await refusals(system, "operations", "bad_signature")

    await publish(channel, namespace, topology.S1_COMMANDS.name, tampered, sent.routing_key or "")

    bad = await parked(channel, namespace, earlier_command_queue(agent), tampered.body)
    assert bad.headers[REASON_HEADER] == "bad_signature"
    assert await refusals(system, "operations", "bad_signature") == before + 1
    await asyncio.sleep(1.0)
    assert await results.get(no_ack=True, fail=False) is None  # it never ran
    again = await gateway.post(f"/api/vsm/agents/{agent}/command", json=command)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "ok"


def restart(system: LocalSystem, service: str) -> None:
    process = system.processes[service]
    process.terminate()
    process.wait(timeout=30)
    system.start([service])
    system.wait_ready(timeout=180, services=[service])


async def test_a_command_replayed_to_another_agent_is_refused_and_never_runs(
    system: LocalSystem, gateway: httpx.AsyncClient, channel: AbstractChannel, namespace: Namespace
) -> None:
    """A captured signed command for agent A, published again on agent B's routing key or
    straight to B's queue, does not verify there (the signature binds exchange, routing key
    and, in the body, the agent): parked as bad_signature, B never runs it."""
    first, second = [
        (await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})).json()
        for _ in range(2)
    ]
    a, b = first["agent_id"], second["agent_id"]
    commands = await capture(channel, namespace, topology.S1_COMMANDS.name, f"*.{a}.*")
    results_b = await capture(channel, namespace, results_exchange(b).name)
    command = {"type": "process_data", "data": {"data": {"text": "for a"}}}
    done = await gateway.post(f"/api/vsm/agents/{a}/command", json=command)
    assert done.status_code == 200, done.text
    sent = await next_message(commands)
    assert json.loads(sent.body)["data"]["agent_id"] == a
    before = await refusals(system, "operations", "bad_signature")

    on_b_key = copy(sent)
    to_b_queue = copy(sent)
    await publish(
        channel, namespace, topology.S1_COMMANDS.name, on_b_key, f"worker.{b}.process_data"
    )
    await channel.default_exchange.publish(
        to_b_queue, routing_key=namespace.name(partition_queue(partition_of(b, 16)).name)
    )

    for replay in (on_b_key, to_b_queue):
        bad = await parked(channel, namespace, earlier_command_queue(b), replay.body)
        assert bad.headers[REASON_HEADER] == "bad_signature"
        assert "another destination" in bad.headers[DETAIL_HEADER]
    assert await refusals(system, "operations", "bad_signature") == before + 2
    await asyncio.sleep(1.0)
    assert await results_b.get(no_ack=True, fail=False) is None  # B ran nothing


async def test_a_request_replayed_to_another_services_route_is_refused(
    system: LocalSystem, gateway: httpx.AsyncClient, channel: AbstractChannel, namespace: Namespace
) -> None:
    requests = await capture(channel, namespace, topology.REQUESTS.name, "operations.spawn")
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    request = await next_message(requests)
    replay = copy(request)

    await publish(channel, namespace, topology.REQUESTS.name, replay, "control.spawn")

    bad = await parked(channel, namespace, topology.requests_queue("control"), replay.body)
    assert bad.headers[REASON_HEADER] == "bad_signature"
    assert "another destination" in bad.headers[DETAIL_HEADER]
    assert security_events(system, "control")[-1]["reason"] == "bad_signature"


async def test_the_logs_replayed_at_start_up_keep_their_signed_entries(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    """Streams cannot dead-letter, so their readers check signatures themselves; signed
    policies and the agent registry survive restarts (refused entries: test_key_rotation)."""
    signed = await gateway.put(
        "/api/vsm/policies/governance", json={"policy": {"principles": ["signed"]}}
    )
    assert signed.status_code == 200, signed.text
    version = signed.json()["version"]
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text

    restart(system, "queen")
    restart(system, "operations")

    latest = (await gateway.get("/api/vsm/policies/governance")).json()
    assert (latest["version"], latest["policy"]["principles"]) == (version, ["signed"])
    agents = [a["agent_id"] for a in (await gateway.get("/api/vsm/agents")).json()]
    assert spawned.json()["agent_id"] in agents


async def test_every_service_is_still_up(system: LocalSystem, gateway: httpx.AsyncClient) -> None:
    for service in SERVICES:
        async with httpx.AsyncClient(base_url=system.url(service)) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
        assert system.processes[service].poll() is None
    await all_up(gateway)
    print(
        "\nsecurity events per service:",
        {service: len(security_events(system, service)) for service in SERVICES},
    )
