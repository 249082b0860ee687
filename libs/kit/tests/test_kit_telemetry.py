"""Tracing configured by OpenTelemetry's standard variables, and the kit's messaging spans as
the current semantic conventions name them, on a real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.kit.consumer import DirectConsumers
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.kit.telemetry import TraceExport, create_telemetry, create_tracer_provider

OTEL = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variables", "exporters", "spans", "with_tracing"),
    [
        ({}, (), False, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",), True, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",), True, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",), True, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console"), True, True),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            (),
            False,
            True,
        ),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, (), False, False),
    ],
)
def test_the_standard_variables_decide_whether_spans_exist_and_where_they_go(
    env: pytest.MonkeyPatch,
    variables: dict[str, str],
    exporters: tuple[str, ...],
    spans: bool,
    with_tracing: bool,
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    export = TraceExport()
    assert export.exporters == exporters
    assert export.spans() is spans
    assert export.spans(tracing=True) is with_tracing  # the deprecated TRACING
    assert create_telemetry("control", tracing=False).tracing is spans


def test_an_unknown_exporter_is_refused_by_its_variable_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER: unknown exporter"):
        create_telemetry("control")


def test_the_resource_is_the_service_unless_the_standard_variables_say_otherwise(
    env: pytest.MonkeyPatch,
) -> None:
    attributes: Any = create_tracer_provider("control").resource.attributes
    assert (attributes["service.name"], attributes["service.namespace"]) == ("control", "vsm")

    env.setenv("OTEL_SERVICE_NAME", "s3-eu")
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,service.namespace=x")
    attributes = create_tracer_provider("control").resource.attributes
    assert attributes["service.name"] == "s3-eu"
    assert attributes["deployment.environment.name"] == "prod"
    assert attributes["service.namespace"] == "x"


WORK = topology.Exchange("test.trace.work", "topic")
QUEUE = topology.Queue("test.trace.queue", (topology.Binding(WORK, "job.#"),))


async def test_a_publish_and_its_processing_are_spans_of_one_trace(probe: Probe) -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    bus = probe.bus
    await probe.bus.broker.declare_exchange(bus.exchange(WORK))
    await bus.declare(QUEUE)
    heard: list[Envelope[Any]] = []

    async def handler(envelope: Envelope[Any], message: Any) -> None:
        heard.append(envelope)

    consumers = DirectConsumers(bus, prefetch_count=10, grace_s=1, tracer=tracer)
    bus.producer.tracer = tracer
    try:
        await consumers.consume(QUEUE, handler)
        sent = await bus.publish(WORK, Ping(), routing_key="job.one")
        await eventually(lambda: asyncio.sleep(0, heard), what="the message handled")
    finally:
        bus.producer.tracer = None
        await consumers.stop()

    exchange, queue = bus.namespace.name(WORK.name), bus.namespace.name(QUEUE.name)
    (published,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    (processed,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert published.name == f"publish {exchange}"
    assert processed.name == f"process {queue}"
    assert processed.parent is not None
    assert processed.parent.span_id == published.context.span_id
    common = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": "job.one",
        "messaging.message.id": sent.id,
        "messaging.message.conversation_id": sent.correlation_id,
    }
    assert (
        dict(published.attributes or {}).items()
        >= {
            **common,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
        }.items()
    )
    assert (
        dict(processed.attributes or {}).items()
        >= {
            **common,
            "messaging.operation.type": "process",
            "messaging.destination.subscription.name": queue,
        }.items()
    )
    deprecated = {"messaging.operation", "messaging.message.payload_size_bytes"}
    for span in (published, processed):
        assert span.attributes is not None
        assert int(str(span.attributes["messaging.message.body.size"])) > 0
        assert not deprecated & set(span.attributes)


async def test_faststream_s_spans_carry_the_current_names_as_well() -> None:
    runtime = Runtime("control", ServiceSettings(log_format="console", tracing=True))
    exporter = InMemorySpanExporter()
    runtime.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    requests = runtime.bus.exchange(topology.REQUESTS)

    async with TestRabbitBroker(runtime.broker) as broker:
        ping = runtime.bus.envelope(Ping())
        await broker.request(ping.model_dump_json(), exchange=requests, routing_key="control.ping")

    processed = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert processed
    for span in processed:
        assert span.attributes is not None
        assert span.attributes["messaging.operation.type"] == "process"
        size = span.attributes["messaging.message.body.size"]
        assert size == span.attributes["messaging.message.payload_size_bytes"]  # FastStream's
        assert isinstance(size, int)
        assert size > 0


def test_the_kit_s_amqp_series_count_as_faststream_s_own_manager_counts() -> None:
    """`amqp_metrics` keeps each labelled series once looked up: the same samples, in the same
    collectors, as FastStream's manager writes, whichever of the two wrote first."""
    from faststream.prometheus.container import MetricsContainer
    from faststream.prometheus.manager import MetricsManager
    from faststream.prometheus.types import ProcessingStatus, PublishingStatus
    from prometheus_client import CollectorRegistry

    from vsm.kit.telemetry import AMQP_METRICS_PREFIX, KeptSeries

    def drive(manager: MetricsManager) -> None:
        for route in ("a.x", "a.x", "b.y"):
            manager.add_received_message(broker="rabbitmq", handler=route)
            manager.observe_received_messages_size(broker="rabbitmq", handler=route, size=10)
            manager.add_received_message_in_process(broker="rabbitmq", handler=route)
            manager.observe_received_processed_message_duration(
                duration=0.5, broker="rabbitmq", handler=route
            )
            manager.remove_received_message_in_process(broker="rabbitmq", handler=route)
            manager.add_received_processed_message(
                broker="rabbitmq", handler=route, status=ProcessingStatus.acked
            )
            manager.observe_published_message_duration(
                duration=0.25, broker="rabbitmq", destination=route
            )
            manager.add_published_message(
                broker="rabbitmq", destination=route, status=PublishingStatus.success
            )

    def samples(kind: type[MetricsManager]) -> dict[tuple[str, tuple[Any, ...]], float]:
        registry = CollectorRegistry()
        container = MetricsContainer(
            registry, metrics_prefix=AMQP_METRICS_PREFIX, custom_label_names=()
        )
        drive(kind(container, app_name="svc"))
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    kept, plain = samples(KeptSeries), samples(MetricsManager)
    assert kept == plain
    assert (
        kept[
            (
                "vsm_amqp_received_messages_total",
                (("app_name", "svc"), ("broker", "rabbitmq"), ("handler", "a.x")),
            )
        ]
        == 2
    )
