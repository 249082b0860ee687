"""Metrics (Prometheus registry per service) and traces (OpenTelemetry SDK, OTLP export)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aio_pika import IncomingMessage
from faststream.message import StreamMessage
from faststream.opentelemetry.middleware import TelemetryMiddleware
from faststream.prometheus import ConsumeAttrs, PrometheusMiddleware
from faststream.prometheus.container import MetricsContainer
from faststream.prometheus.manager import MetricsManager
from faststream.prometheus.types import ProcessingStatus, PublishingStatus
from faststream.rabbit.opentelemetry.provider import RabbitTelemetrySettingsProvider
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider
from faststream.rabbit.response import RabbitPublishCommand
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from prometheus_client import (
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from vsm.kit.labels import RouteLabels
from vsm.kit.version import VERSION

__all__ = [
    "AMQP_METRICS_PREFIX",
    "EXPORTERS",
    "BoundedRoutes",
    "KeptSeries",
    "MessagingSpans",
    "Telemetry",
    "TraceExport",
    "amqp_metrics",
    "amqp_metrics_middleware",
    "create_telemetry",
    "create_tracer_provider",
    "messaging_middleware",
]

disable_created_metrics()  # type: ignore[no-untyped-call]


class TraceExport(BaseSettings):
    """Whether spans exist and where they go, from OpenTelemetry's standard variables.

    - `OTEL_SDK_DISABLED=true`: no spans, whatever else is set.
    - `OTEL_TRACES_EXPORTER`: `otlp` (OTLP/HTTP, protobuf), `console`, or `none`
      (comma-separated for several). Set to an exporter, spans exist and go there.
    - `OTEL_EXPORTER_OTLP_ENDPOINT` (spans go to `<it>/v1/traces`) or
      `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (a full URL): with no exporter named, `otlp`.
    - With none of them, no spans: unlike the SDK's default (`otlp` to localhost:4318), since
      a span per AMQP hop is costly per message (`make bench`).

    `TRACING=true` (deprecated) still turns spans on without an exporter: trace ids in the
    logs only. The SDK reads the other standard variables itself: `OTEL_SERVICE_NAME`,
    `OTEL_RESOURCE_ATTRIBUTES`, the exporter's headers, timeout and compression, `OTEL_BSP_*`.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    otel_sdk_disabled: bool = False
    otel_traces_exporter: str = ""
    otel_exporter_otlp_endpoint: str = ""  # base URL; spans go to <it>/v1/traces
    otel_exporter_otlp_traces_endpoint: str = ""  # full URL, for traces only

    @property
    def otlp(self) -> bool:
        return bool(self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint)

    @property
    def exporters(self) -> tuple[str, ...]:
        """The exporters spans go to (none: spans, if any, stay in the process)."""
        if self.otel_sdk_disabled:
            return ()
        named = [name.strip().lower() for name in self.otel_traces_exporter.split(",")]
        chosen = tuple(name for name in named if name and name != "none")
        unknown = set(chosen) - set(EXPORTERS)
        if unknown:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {sorted(unknown)}; use "
                f"{', '.join(EXPORTERS)} or none"
            )
        if any(named) or not self.otlp:
            return chosen
        return ("otlp",)

    def spans(self, tracing: bool = False) -> bool:
        """Whether the service makes spans; `tracing` is the deprecated `TRACING`."""
        return not self.otel_sdk_disabled and (bool(self.exporters) or tracing)


def _otlp() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


EXPORTERS: dict[str, Callable[[], SpanExporter]] = {"otlp": _otlp, "console": ConsoleSpanExporter}


@dataclass(frozen=True)
class Telemetry:
    """What a service measures about its own message handling."""

    registry: CollectorRegistry
    tracer_provider: TracerProvider
    dead_lettered: Counter
    handler_failures: Counter
    dead_letters_refused: Counter
    tracing: bool = False
    """Whether spans are made (`TraceExport.spans`)."""
    routes: RouteLabels = field(default_factory=RouteLabels)
    """The `handler`/`destination` labels of the AMQP series, from a closed set."""


def create_tracer_provider(service: str, export: TraceExport | None = None) -> TracerProvider:
    """The service's spans, batched to the exporters configured.

    `service.name` is the service's name and `service.namespace` `vsm`, unless
    `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` say otherwise. The provider flushes
    its batch when the process exits (the SDK registers that), so a service stopped by
    SIGTERM still delivers the spans of its last work.
    """
    ours = {"service.name": service, "service.namespace": "vsm", "service.version": VERSION}
    resource = Resource.create(ours).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    for name in (export or TraceExport()).exporters:
        provider.add_span_processor(BatchSpanProcessor(EXPORTERS[name]()))
    return provider


def create_telemetry(service: str, *, tracing: bool = False) -> Telemetry:
    """The service's registry and tracer provider; `tracing`: the deprecated `TRACING`."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, _cpu_seconds_total, ...
    PlatformCollector(registry=registry)  # python_info
    export = TraceExport()
    return Telemetry(
        registry=registry,
        tracer_provider=create_tracer_provider(service, export),
        tracing=export.spans(tracing),
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
        dead_letters_refused=Counter(
            "vsm_dead_letters_refused",
            "Dead letters the broker refused (their dead-letter queue is full): each stays on "
            "its queue, nacked.",
            ["service", "queue"],
            registry=registry,
        ),
    )


class MessagingSpans(RabbitTelemetrySettingsProvider):
    """FastStream's spans (its OpenTelemetry middleware) with the current semantic-convention
    names beside the older ones it writes itself (`messaging.operation`,
    `messaging.message.payload_size_bytes`), as OpenTelemetry's own `dup` migration does:
    one query finds the kit's spans and FastStream's alike."""

    def get_consume_attrs_from_message(self, msg: StreamMessage[IncomingMessage]) -> dict[str, Any]:
        found = super().get_consume_attrs_from_message(msg)
        return found | {
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": msg.raw_message.exchange or "amq.default",
            "messaging.message.body.size": len(msg.body),
        }

    def get_publish_attrs_from_cmd(self, cmd: RabbitPublishCommand) -> dict[str, Any]:
        found = super().get_publish_attrs_from_cmd(cmd)
        return found | {"messaging.operation.type": "send", "messaging.operation.name": "publish"}


def messaging_middleware(provider: TracerProvider) -> Any:
    """FastStream's OpenTelemetry middleware, naming its spans' attributes as `MessagingSpans`."""
    return TelemetryMiddleware(
        settings_provider_factory=lambda _: MessagingSpans(), tracer_provider=provider
    )


class BoundedRoutes(RabbitMetricsSettingsProvider):
    """FastStream's metrics labels (`handler`, `destination`) from the service's closed set
    (`RouteLabels`), not from every routing key a caller chose."""

    def __init__(self, routes: RouteLabels) -> None:
        super().__init__()
        self.routes = routes

    def get_consume_attrs_from_message(self, msg: StreamMessage[IncomingMessage]) -> ConsumeAttrs:
        found = super().get_consume_attrs_from_message(msg)
        raw = msg.raw_message
        found["destination_name"] = self.routes(raw.exchange or "", raw.routing_key or "")
        return found

    def get_publish_destination_name_from_cmd(self, cmd: RabbitPublishCommand) -> str:
        return self.routes(cmd.exchange.name or "", cmd.destination)


AMQP_METRICS_PREFIX = "vsm_amqp"


def amqp_metrics_middleware(
    telemetry: Telemetry, service: str
) -> PrometheusMiddleware[IncomingMessage, RabbitPublishCommand]:
    """FastStream's Prometheus middleware (`vsm_amqp_*`), labelled from a closed set."""
    routes = telemetry.routes
    return PrometheusMiddleware(
        settings_provider_factory=lambda _: BoundedRoutes(routes),
        registry=telemetry.registry,
        app_name=service,
        metrics_prefix=AMQP_METRICS_PREFIX,
    )


def amqp_metrics(telemetry: Telemetry, service: str) -> MetricsManager:
    """FastStream's AMQP series (`vsm_amqp_*`, the dashboards' own) for what the kit publishes
    and consumes without FastStream: the same collectors in the service's registry, found
    there by name when FastStream's middleware registered them first, and the reverse."""
    container = MetricsContainer(
        telemetry.registry, metrics_prefix=AMQP_METRICS_PREFIX, custom_label_names=()
    )
    return KeptSeries(container, app_name=service)


class KeptSeries(MetricsManager):
    """FastStream's manager with each labelled series kept once looked up: the kit updates
    several per message, and a lookup (`labels()`) costs more than the update. Its labels are
    closed sets (`RouteLabels`, the statuses), so what is kept is bounded."""

    __slots__ = ("_series",)

    def __init__(self, container: MetricsContainer, *, app_name: str) -> None:
        super().__init__(container, app_name=app_name)
        self._series: dict[tuple[str, str, str, str], Any] = {}

    def _kept(self, metric: str, broker: str, route: str, status: str = "") -> Any:
        key = (metric, broker, route, status)
        series = self._series.get(key)
        if series is None:
            labels = {"app_name": self._app_name, "broker": broker}
            labels["destination" if metric.startswith("published") else "handler"] = route
            if status:
                labels["status"] = status
            series = getattr(self._container, metric).labels(**labels)
            self._series[key] = series
        return series

    def add_received_message(
        self, broker: str, handler: str, amount: int = 1, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().add_received_message(broker, handler, amount, **custom_labels)
            return
        self._kept("received_messages_total", broker, handler).inc(amount)

    def observe_received_messages_size(
        self, broker: str, handler: str, size: int, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().observe_received_messages_size(broker, handler, size, **custom_labels)
            return
        self._kept("received_messages_size_bytes", broker, handler).observe(size)

    def add_received_message_in_process(
        self, broker: str, handler: str, amount: int = 1, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().add_received_message_in_process(broker, handler, amount, **custom_labels)
            return
        self._kept("received_messages_in_process", broker, handler).inc(amount)

    def remove_received_message_in_process(
        self, broker: str, handler: str, amount: int = 1, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().remove_received_message_in_process(broker, handler, amount, **custom_labels)
            return
        self._kept("received_messages_in_process", broker, handler).dec(amount)

    def add_received_processed_message(
        self,
        broker: str,
        handler: str,
        status: ProcessingStatus,
        amount: int = 1,
        **custom_labels: str,
    ) -> None:
        if custom_labels:
            super().add_received_processed_message(broker, handler, status, amount, **custom_labels)
            return
        self._kept("received_processed_messages_total", broker, handler, status.value).inc(amount)

    def observe_received_processed_message_duration(
        self, duration: float, broker: str, handler: str, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().observe_received_processed_message_duration(
                duration, broker, handler, **custom_labels
            )
            return
        metric = "received_processed_messages_duration_seconds"
        self._kept(metric, broker, handler).observe(duration)

    def add_published_message(
        self,
        broker: str,
        destination: str,
        status: PublishingStatus,
        amount: int = 1,
        **custom_labels: str,
    ) -> None:
        if custom_labels:
            super().add_published_message(broker, destination, status, amount, **custom_labels)
            return
        self._kept("published_messages_total", broker, destination, status.value).inc(amount)

    def observe_published_message_duration(
        self, duration: float, broker: str, destination: str, **custom_labels: str
    ) -> None:
        if custom_labels:
            super().observe_published_message_duration(
                duration, broker, destination, **custom_labels
            )
            return
        metric = "published_messages_duration_seconds"
        self._kept(metric, broker, destination).observe(duration)
