"""Every envelope is a valid CloudEvent: messages taken from the queues of a running, signing
system (heartbeats of all seven services, requests, a reply, an agent's spawn, command and
result, pain) are read by the official CloudEvents SDK through its RabbitMQ binding, which
picks structured mode from the content type and validates every attribute, extension names
included. The signatures still verify on the bytes as delivered."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from cloudevents.core.bindings import rabbitmq
from cloudevents.core.v1.event import CloudEvent

from scripts.localrun import SERVICES
from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import CONTENT_TYPE
from vsm.contract.health import HealthReport, Ping, Pong
from vsm.contract.message import model_for
from vsm.contract.operations import AgentCommand, AgentSpawned, CommandResult, SpawnAgent
from vsm.kit.bus import amqp_properties
from vsm.kit.signing import Keyring, parse_keyring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KEYS = "ce1:Y2xvdWRldmVudHMta2V5LW9mLXRoZS10ZXN0"


def keyring() -> Keyring:
    keys = parse_keyring(KEYS)
    assert keys is not None
    return keys


OBSERVED = (
    (topology.HEALTH, ""),
    (topology.REQUESTS, "#"),
    (topology.ALGEDONIC, ""),
    (topology.S1_REGISTRY, "#"),
    (topology.S1_COMMANDS, "#"),
    (topology.S1_RESULTS, "#"),
)


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return {"VSM_SIGNING_KEYS": KEYS}


@dataclass
class Delivered:
    """A message as a consumer receives it, and the CloudEvent the SDK reads from it."""

    message: AbstractIncomingMessage
    event: CloudEvent


def read(message: AbstractIncomingMessage) -> Delivered:
    """The SDK's reading of the delivery: binary or structured mode by the content type."""
    delivery = rabbitmq.RabbitMQMessage(
        headers={key: str(value) for key, value in (message.headers or {}).items()},
        content_type=message.content_type,
        body=message.body,
    )
    return Delivered(message, rabbitmq.from_rabbitmq_event(delivery))


@pytest.fixture
async def observed(system_probe: Probe) -> list[AbstractQueue]:
    channel = system_probe.channel
    queues = []
    for exchange, key in OBSERVED:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(system_probe.namespace.name(exchange.name), routing_key=key)
        queues.append(queue)
    return queues


async def drain(queues: list[AbstractQueue]) -> list[AbstractIncomingMessage]:
    taken = []
    for queue in queues:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


async def ping_raw(probe: Probe, service: str) -> AbstractIncomingMessage:
    """A request signed as the kit signs it, and the reply as the requester receives it."""
    channel = probe.channel
    replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    reply_to = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
    tag = await reply_to.consume(replies.put, no_ack=True)
    try:
        envelope = probe.bus.envelope(Ping())
        body = envelope.model_dump_json().encode()
        exchange = probe.namespace.name(topology.REQUESTS.name)
        key = topology.request_key(service, "ping")
        props = amqp_properties(envelope)
        props["headers"] |= keyring().sign(body, exchange, key)
        message = aio_pika.Message(
            body, reply_to="amq.rabbitmq.reply-to", app_id=probe.bus.source, **props
        )
        await (await channel.get_exchange(exchange, ensure=False)).publish(message, key)
        return await asyncio.wait_for(replies.get(), 30)
    finally:
        await reply_to.cancel(tag)


async def test_what_the_services_publish_is_read_by_the_cloudevents_sdk(
    system_probe: Probe, gateway: httpx.AsyncClient, observed: list[AbstractQueue]
) -> None:
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
    assert spawned.status_code == 201, spawned.text
    agent_id = spawned.json()["agent_id"]
    result = await gateway.post(
        f"/api/vsm/agents/{agent_id}/command",
        json={"type": "analyze", "data": {"values": [1, 2, 3]}},
    )
    assert result.status_code == 200, result.text
    pain = await gateway.post("/api/vsm/algedonic/pain", json={"intensity": 0.2})
    assert pain.status_code == 202, pain.text
    reply = read(await ping_raw(system_probe, "queen"))

    taken: list[AbstractIncomingMessage] = []

    async def every_service_heard() -> bool:
        taken.extend(await drain(observed))
        sources = {m.app_id for m in taken if m.type == HealthReport.TYPE}
        return sources >= {f"vsm/{service}" for service in SERVICES}

    await eventually(every_service_heard, timeout=30, what="a heartbeat of every service")
    events = [read(message) for message in taken]  # raises on any invalid event
    events.append(reply)

    for seen in events:
        message, event = seen.message, seen.event
        assert message.content_type == CONTENT_TYPE
        assert event.get_specversion() == "1.0"
        assert (event.get_id(), event.get_type()) == (message.message_id, message.type)
        assert event.get_source() == message.app_id
        assert event.get_datacontenttype() == "application/json"
        assert event.get_time() is not None
        assert event.get_extension("vsmid") == "root"
        assert event.get_extension("correlationid")
        assert message.headers is not None
        assert message.headers["ce-type"] == event.get_type()
        model = model_for(event.get_type())
        assert model is not None
        model.model_validate(event.get_data())
        assert keyring().verify(
            message.body, message.headers, message.exchange or "", message.routing_key or ""
        )

    by_type: dict[str, list[CloudEvent]] = {}
    for seen in events:
        by_type.setdefault(seen.event.get_type(), []).append(seen.event)
    expected = {
        HealthReport.TYPE,
        SpawnAgent.TYPE,
        AgentSpawned.TYPE,
        AgentCommand.TYPE,
        CommandResult.TYPE,
        AlgedonicSignal.TYPE,
        Pong.TYPE,
    }
    assert expected <= set(by_type), sorted(by_type)

    (command,) = by_type[AgentCommand.TYPE]
    (answered,) = by_type[CommandResult.TYPE]
    assert answered.get_extension("causationid") == command.get_id()
    assert answered.get_extension("correlationid") == command.get_extension("correlationid")
    assert reply.event.get_extension("causationid")
    assert json.loads(reply.message.body)["data"]["service"] == "queen"
    assert by_type[AlgedonicSignal.TYPE][0].get_source() == "vsm/mcp-gateway"
