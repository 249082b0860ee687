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


async def test_with_tracing_on_a_reply_carries_the_trace_of_its_request() -> None:
    settings = ServiceSettings(instance_id="control-1", log_format="console", tracing=True)
    runtime = Runtime("control", settings)
    tracer = runtime.telemetry.tracer_provider.get_tracer("test")
    requests = runtime.bus.exchange(topology.REQUESTS)

    async with TestRabbitBroker(runtime.broker) as broker:
        with tracer.start_as_current_span("operator asks") as span:
            ping = runtime.bus.envelope(Ping())
            reply = await broker.request(
                ping.model_dump_json(), exchange=requests, routing_key="control.ping"
            )

    trace_id = format(span.get_span_context().trace_id, "032x")
    answer = TypeAdapter(Envelope[Message]).validate_json(reply.body)
    assert ping.traceparent is not None
    assert ping.traceparent.split("-")[1] == trace_id
    assert answer.traceparent is not None
    assert answer.traceparent.split("-")[1] == trace_id


async def test_without_tracing_a_caused_message_keeps_the_trace_of_its_cause() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    cause = Envelope.wrap(Ping(), source="vsm/test", traceparent=traceparent)
    runtime = Runtime("control", ServiceSettings(log_format="console"))

    effect = runtime.bus.envelope(Pong(service="control", instance="x"), cause=cause)

    assert effect.traceparent == traceparent
