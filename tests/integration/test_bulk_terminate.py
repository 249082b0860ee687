"""Bulk terminate on the real broker: `POST /api/vsm/agents:bulk-terminate` retires many agents
in one request, each answered on its own, and leaves nothing of them on the broker; and what a
spawned agent is on the broker: its results exchange joined into `vsm.s1.results` and one
binding into its partition, which its commands, audits, allocations and notes all take.

The system runs on a RabbitMQ node of this module's own, so that the test can ask the node
itself (`rabbitmqctl`) for every exchange and binding that still names a terminated agent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import aio_pika
import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.polling import eventually
from tests.support.rabbitmq import PrivateRabbitMQ
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.control import AllocationChanged, Resources, allocation_key
from vsm.contract.coordination import CoordinationNote, note_key
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.contract.operations import (
    AgentCommand,
    AgentInfo,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    agent_routes,
    command_key,
    earlier_routes,
    partition_queue,
    registry_key,
    results_exchange,
)
from vsm.kit.signing import parse_keyring

pytestmark = pytest.mark.integration

AGENTS = 200
KEYS = "bt1:YnVsay10ZXJtaW5hdGUta2V5LW9mLXRoZS10ZXN0"
TERMINATE_MAX = 250
"""`REST_BULK_TERMINATE_MAX` of the module's system: the 200 agents and a few unknown ids fit."""


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateRabbitMQ]:
    with PrivateRabbitMQ() as private:
        yield private


@pytest.fixture(scope="module")
def amqp_url(node: PrivateRabbitMQ) -> str:
    """The module's system (`tests.support.system`) runs on the module's own node."""
    return node.url


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    """Signed, so that an allocation or a note joined into `vsm.s1.commands` is seen to
    verify where it arrives (the signature names the exchange it was published to)."""
    return {"REST_BULK_TERMINATE_MAX": str(TERMINATE_MAX), "VSM_SIGNING_KEYS": KEYS}


@pytest.fixture
async def rest(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=120) as client:
        yield client


def naming(node: PrivateRabbitMQ, agent_ids: Iterable[str]) -> list[str]:
    """The node's exchanges and bindings (source, destination, key) that name one of
    `agent_ids`."""
    ids = set(agent_ids)
    listed = node.ctl("list_exchanges", "name").splitlines()
    listed += node.ctl(
        "list_bindings", "source_name", "destination_name", "routing_key"
    ).splitlines()
    return [line for line in listed if ids & set(line.replace("\t", ".").split("."))]


async def cleaned(node: PrivateRabbitMQ, agent_ids: Iterable[str]) -> None:
    """Until the node holds nothing that names `agent_ids` (their results exchanges are
    deleted in the background once the terminate is answered); AssertionError, with what is
    left, after 30 checks."""
    ids, left = list(agent_ids), ["not asked yet"]

    async def nothing() -> bool:
        left[:] = await asyncio.to_thread(naming, node, ids)
        return not left

    try:
        await eventually(nothing, timeout=30, interval=1.0, what="nothing of them on the broker")
    except AssertionError as failed:
        raise AssertionError(f"{failed}; left: {left[:10]}") from None


async def spawn_many(rest: httpx.AsyncClient, n: int) -> list[str]:
    vsm = {"vsm_id": f"root/bt{secrets.token_hex(3)}"}
    body = {"agents": [{"type": "worker"}] * n}
    reply = await rest.post("/api/vsm/agents:bulk", params=vsm, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["spawned"] == n, reply.text
    return [r["agent"]["agent_id"] for r in reply.json()["results"]]


async def publish(
    amqp_url: str, exchange: str, message: Message | dict[str, Any], routing_key: str
) -> None:
    """`message` in an envelope (a dict: the envelope's data as it stands, say as an earlier
    release wrote it), signed, published (mandatory, confirmed) on `exchange` (the broker's
    name) as a service would."""
    keys = parse_keyring(KEYS)
    assert keys is not None
    if isinstance(message, Message):
        body = Envelope.wrap(message, source="vsm/test").model_dump_json().encode()
    else:
        body = json.dumps(message).encode()
    headers = keys.sign(body, exchange, routing_key)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=False)
        sent = aio_pika.Message(body, content_type="application/json", headers=dict(headers))
        await target.publish(sent, routing_key, mandatory=True)


async def audit(rest: httpx.AsyncClient, agent_id: str, kind: str) -> Any:
    response = await rest.post(
        "/api/vsm/audit/bypass", json={"agent_id": agent_id, "audit_type": kind, "timeout_s": 10}
    )
    assert response.status_code == 200, response.text
    return response.json()["report"]


async def unroutable(amqp_url: str, namespace: str, agent_id: str) -> bool:
    """Whether a command to `agent_id` on `vsm.s1.commands` is returned: no route left."""
    envelope = Envelope.wrap(AgentCommand(command_type="process_data"), source="vsm/test")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        commands = await channel.get_exchange(
            f"{namespace}.{topology.S1_COMMANDS.name}", ensure=False
        )
        try:
            await commands.publish(
                aio_pika.Message(envelope.model_dump_json().encode()),
                command_key("worker", agent_id, "process_data"),
                mandatory=True,
            )
        except aio_pika.exceptions.DeliveryError:
            return True
        return False


async def test_a_bulk_terminate_retires_every_agent_named_and_leaves_nothing_on_the_broker(
    rest: httpx.AsyncClient, node: PrivateRabbitMQ, system: LocalSystem
) -> None:
    agents = await spawn_many(rest, AGENTS)
    assert len(await asyncio.to_thread(naming, node, agents)) >= AGENTS  # their exchanges
    ghost = f"worker-{secrets.token_hex(6)}"
    ids = [*agents[:100], ghost, *agents[100:], agents[0]]

    reply = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": ids})

    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["terminated"], answer["refused"]) == (AGENTS, 2)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(ids)))
    assert [r["agent_id"] for r in results] == ids
    refused = [(r["index"], r["status"], r["error"]) for r in results if r["agent"] is None]
    assert refused == [(100, 404, "agent_not_found"), (AGENTS + 1, 404, "agent_not_found")]
    assert {r["agent"]["state"] for r in results if r["agent"] is not None} == {"terminated"}
    listed = (await rest.get("/api/vsm/agents")).json()
    assert not set(agents) & {a["agent_id"] for a in listed}
    for agent_id in (agents[0], agents[-1]):
        assert (await rest.get(f"/api/vsm/agents/{agent_id}")).status_code == 404
        late = await rest.post(
            f"/api/vsm/agents/{agent_id}/command", json={"type": "process_data", "data": {}}
        )
        assert (late.status_code, late.json()["error"]) == (404, "agent_not_found")
        assert await unroutable(node.url, system.env["VSM_NAMESPACE"], agent_id)
    await cleaned(node, agents)


async def registry_events(channel: aio_pika.abc.AbstractChannel, queue: str) -> list[Any]:
    """The registry events held in `queue` (confirmed before the request that made them was
    answered, so all there), taken."""
    taken, target = [], await channel.get_queue(queue, ensure=False)
    while (message := await target.get(no_ack=True, fail=False)) is not None:
        taken.append((message.routing_key, Envelope.model_validate_json(message.body).data))
    return taken


async def test_a_bulk_spawn_and_terminate_log_a_batch_per_64_agents_of_a_type_and_s3_s2_learn_each(
    rest: httpx.AsyncClient, node: PrivateRabbitMQ, system: LocalSystem
) -> None:
    """200 agents of two types spawned in one request are logged as at most one event per 64
    agents of a type (`VSM_REGISTRY_BATCH`), each routed `agent.spawned.<type>`; S3 opens an
    account and S2 learns the capacity of every one of them; a bulk terminate is batched the
    same way and both forget every one."""
    ns = f"{system.env['VSM_NAMESPACE']}."
    vsm_id = f"root/rb{secrets.token_hex(3)}"
    connection = await aio_pika.connect(node.url)
    async with connection:
        channel = await connection.channel()
        observer = await channel.declare_queue(exclusive=True, auto_delete=True)
        await observer.bind(ns + topology.S1_REGISTRY.name, routing_key="agent.#")
        body = {"agents": [{"type": "worker"}] * 150 + [{"type": "sensor"}] * 50}
        reply = await rest.post("/api/vsm/agents:bulk", params={"vsm_id": vsm_id}, json=body)
        assert reply.status_code == 200, reply.text
        agents = {r["agent"]["agent_id"]: r["agent"]["agent_type"] for r in reply.json()["results"]}
        assert len(agents) == 200

        spawned = await registry_events(channel, observer.name)
        assert len(spawned) <= -(-200 // 64) + 2, [key for key, _ in spawned]
        named = {a.agent_id: (key, a.agent_type) for key, e in spawned for a in e.agents}
        assert named == {i: (f"agent.spawned.{t}", t) for i, t in agents.items()}
        assert all(isinstance(e, AgentsSpawned) for _, e in spawned)

        async def learned(present: bool) -> bool | None:
            s3 = (await rest.get("/api/vsm/system/3", params={"vsm_id": vsm_id})).json()
            s2 = (await rest.get("/api/vsm/system/2", params={"vsm_id": vsm_id})).json()
            accounts = {a["agent_id"] for a in s3["allocations"]} & set(agents)
            capacity = set(s2["capacity"]) & set(agents)
            want = set(agents) if present else set()
            return True if accounts == want and capacity == want else None

        await eventually(lambda: learned(True), timeout=30, what="S3 and S2 knowing all 200")

        ids = list(agents)
        gone = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": ids})
        assert gone.json()["terminated"] == 200, gone.text
        ended = await registry_events(channel, observer.name)
        assert len(ended) <= -(-200 // 64) + 2, [key for key, _ in ended]
        assert all(isinstance(e, AgentsTerminated) for _, e in ended)
        named = {i: (key, e.agent_type) for key, e in ended for i in e.agent_ids}
        assert named == {i: (f"agent.terminated.{t}", t) for i, t in agents.items()}
        await eventually(lambda: learned(False), timeout=30, what="S3 and S2 forgetting all 200")
    await cleaned(node, agents)


async def test_a_bulk_terminate_of_only_unknown_ids_refuses_each_and_changes_nothing(
    rest: httpx.AsyncClient,
) -> None:
    (kept,) = await spawn_many(rest, 1)
    ids = ["nobody", "nobody"]

    reply = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": ids})

    assert reply.status_code == 200, reply.text
    assert reply.json()["terminated"] == 0
    assert [r["error"] for r in reply.json()["results"]] == ["agent_not_found"] * 2
    assert (await rest.get(f"/api/vsm/agents/{kept}")).json()["state"] == "running"
    gone = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": [kept]})
    assert gone.json()["terminated"] == 1


async def test_a_bulk_terminate_too_large_empty_or_malformed_is_refused_whole(
    rest: httpx.AsyncClient,
) -> None:
    (kept,) = await spawn_many(rest, 1)
    too_many = {"agent_ids": [kept] + [f"worker-{n}" for n in range(TERMINATE_MAX)]}
    reply = await rest.post("/api/vsm/agents:bulk-terminate", json=too_many)
    assert reply.status_code == 422, reply.text
    assert reply.json()["fields"][0]["field"] == "agent_ids"
    assert "REST_BULK_TERMINATE_MAX" in reply.json()["message"]
    for body in ({"agent_ids": []}, {"agent_ids": [kept, ""]}, {"ids": [kept]}):
        reply = await rest.post("/api/vsm/agents:bulk-terminate", json=body)
        assert reply.status_code == 422, reply.text
    huge = {"agent_ids": [kept], "reason": "x" * (2 * 1024 * 1024)}
    reply = await rest.post("/api/vsm/agents:bulk-terminate", json=huge)
    assert reply.status_code == 413, reply.text
    assert (await rest.get(f"/api/vsm/agents/{kept}")).json()["state"] == "running"
    gone = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": [kept]})
    assert gone.json()["terminated"] == 1


async def test_an_agent_is_one_binding_and_its_results_exchange_and_everything_takes_it(
    rest: httpx.AsyncClient, node: PrivateRabbitMQ, system: LocalSystem
) -> None:
    ns = f"{system.env['VSM_NAMESPACE']}."
    agent_id, other = await spawn_many(rest, 2)
    partition = (await rest.get(f"/api/vsm/agents/{agent_id}")).json()["partition"]

    results = ns + results_exchange(agent_id).name
    held = sorted(await asyncio.to_thread(naming, node, [agent_id]))
    assert held == sorted(
        [
            results,  # the exchange
            f"{results}\t{ns}{topology.S1_RESULTS.name}\t#",  # joined into the aggregate
            f"{ns}{topology.S1_COMMANDS.name}\t{ns}{partition_queue(partition).name}"
            f"\t*.{agent_id}.*",  # its one route
        ]
    ), held
    joins = node.ctl("list_bindings", "source_name", "destination_name", "routing_key")
    for join in topology.JOINS:
        line = f"{ns}{join.source.name}\t{ns}{join.destination.name}\t{join.routing_key}"
        assert line in joins.splitlines(), line

    change = AllocationChanged(
        agent_id=agent_id,
        agent_type="worker",
        resources=Resources(concurrency_slots=5),
        reason="one binding",
    )
    await publish(node.url, ns + topology.CONTROL.name, change, allocation_key(agent_id))
    note = CoordinationNote(from_agent=other, to_agent=agent_id, topic="t", content={"n": 7})
    await publish(node.url, ns + topology.COORDINATION.name, note, note_key(agent_id))

    async def taken() -> list[Any] | None:
        report = await audit(rest, agent_id, "state_dump")
        allocated = report["resources"]["allocation"] == 5
        return report["inbox"] if allocated and report["inbox"] else None

    inbox = await eventually(taken, timeout=30, what="the allocation and the note at the agent")
    assert [n["content"] for n in inbox] == [{"n": 7}]
    untouched = await audit(rest, other, "state_dump")
    assert untouched["resources"]["allocation"] != 5
    assert untouched["inbox"] == []
    dead = node.ctl("list_queues", "name", "messages")
    assert f"{ns}vsm.s1.commands.dlq\t0" in dead.splitlines(), dead

    gone = await rest.post("/api/vsm/agents:bulk-terminate", json={"agent_ids": [agent_id]})
    assert gone.json()["terminated"] == 1, gone.text
    await cleaned(node, [agent_id])


async def test_an_agent_of_an_earlier_release_loses_the_bindings_it_gave_it_at_terminate(
    rest: httpx.AsyncClient, node: PrivateRabbitMQ, system: LocalSystem
) -> None:
    """An agent whose registry record has no `one_route` was spawned by a release that also
    bound `allocation.<id>` and `s1.<id>` into its partition: its termination unbinds them
    too (an agent of this release is spared those unbinds, its record saying `one_route`)."""
    ns = f"{system.env['VSM_NAMESPACE']}."
    (template,) = await spawn_many(rest, 1)
    record = (await rest.get(f"/api/vsm/agents/{template}")).json()
    assert record["one_route"] is True
    agent_id = f"worker-{secrets.token_hex(6)}"
    earlier_record = {k: v for k, v in record.items() if k != "one_route"}
    earlier_record["agent_id"] = agent_id
    spawned = Envelope.wrap(AgentSpawned(agent=AgentInfo(**earlier_record)), source="vsm/test")
    event = spawned.model_dump(mode="json")
    del event["data"]["agent"]["one_route"]  # as that release logged it
    registry = ns + topology.S1_REGISTRY.name
    await publish(node.url, registry, event, registry_key("spawned", "worker"))

    async def known() -> Any:
        reply = await rest.get(f"/api/vsm/agents/{agent_id}")
        return reply.json() if reply.status_code == 200 else None

    assert (await eventually(known, timeout=30, what="the agent in the registry"))[
        "one_route"
    ] is False
    # Its broker objects as that release declared them: its results exchange, joined into
    # `vsm.s1.results`, and three bindings into its partition.
    partition = record["partition"]
    connection = await aio_pika.connect(node.url)
    async with connection:
        channel = await connection.channel()
        results = await channel.declare_exchange(
            ns + results_exchange(agent_id).name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await results.bind(ns + topology.S1_RESULTS.name, routing_key="#")
        queue = await channel.get_queue(ns + partition_queue(partition).name, ensure=False)
        for routes in (agent_routes(agent_id, partition), earlier_routes(agent_id, partition)):
            for binding in routes.bindings:
                await queue.bind(ns + binding.exchange.name, routing_key=binding.routing_key)
    assert len(await asyncio.to_thread(naming, node, [agent_id])) == 5

    gone = await rest.post(
        "/api/vsm/agents:bulk-terminate", json={"agent_ids": [agent_id, template]}
    )

    assert gone.json()["terminated"] == 2, gone.text
    await cleaned(node, [agent_id, template])
