"""The kit's handlers in memory (FastStream's TestRabbitBroker): same code, no broker."""

from __future__ import annotations

from faststream.rabbit import TestRabbitBroker
from pydantic import TypeAdapter

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping, Pong
from vsm.contract.message import Message
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings


async def test_every_service_answers_a_ping_with_its_name() -> None:
    runtime = Runtime("control", ServiceSettings(instance_id="control-1", log_format="console"))
    ping = Envelope.wrap(Ping(), source="vsm/test")
    requests = runtime.bus.exchange(topology.REQUESTS)

    async with TestRabbitBroker(runtime.broker) as broker:
        reply = await broker.request(
            ping.model_dump_json(), exchange=requests, routing_key="control.ping"
        )

    answer = TypeAdapter(Envelope[Message]).validate_json(reply.body)
    assert answer.data == Pong(service="control", instance="control-1")
    assert answer.causation_id == ping.id
