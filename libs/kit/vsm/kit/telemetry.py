"""Metrics (Prometheus registry per service) and traces (OpenTelemetry SDK, OTLP export)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from pydantic_settings import BaseSettings, SettingsConfigDict

disable_created_metrics()  # type: ignore[no-untyped-call]


class TraceExport(BaseSettings):
    """Where spans go, from the standard OpenTelemetry variables.

    `TRACING` decides whether spans exist at all; an OTLP endpoint decides that they leave
    the process, over OTLP/HTTP (protobuf). Without one they only put trace ids in the logs.
    The exporter reads the other standard variables itself (headers, timeout, compression).
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    otel_exporter_otlp_endpoint: str = ""  # base URL; spans go to <it>/v1/traces
    otel_exporter_otlp_traces_endpoint: str = ""  # full URL, for traces only

    @property
    def otlp(self) -> bool:
        return bool(self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint)


@dataclass(frozen=True)
class Telemetry:
    """What a service measures about its own message handling."""

    registry: CollectorRegistry
    tracer_provider: TracerProvider
    dead_lettered: Counter
    handler_failures: Counter


def create_tracer_provider(service: str, export: TraceExport | None = None) -> TracerProvider:
    """The service's spans, batched to the OTLP endpoint when one is configured.

    The provider flushes its batch when the process exits (the SDK registers that), so a
    service stopped by SIGTERM still delivers the spans of its last work.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "vsm"})
    )
    if (export or TraceExport()).otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def create_telemetry(service: str) -> Telemetry:
    registry = CollectorRegistry(auto_describe=True)
    return Telemetry(
        registry=registry,
        tracer_provider=create_tracer_provider(service),
        dead_lettered=Counter(
            "vsm_messages_dead_lettered",
            "Messages sent to the dead-letter exchange, by queue and reason.",
            ["service", "queue", "reason"],
            registry=registry,
        ),
        handler_failures=Counter(
            "vsm_handler_failures",
            "Unexpected handler errors (the message is redelivered up to the delivery limit).",
            ["service", "queue", "error"],
            registry=registry,
        ),
    )
