"""Metrics (Prometheus registry per service) and traces (OpenTelemetry SDK)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Telemetry:
    """What a service measures about its own message handling."""

    registry: CollectorRegistry
    tracer_provider: TracerProvider
    dead_lettered: Counter
    handler_failures: Counter


def create_telemetry(service: str) -> Telemetry:
    registry = CollectorRegistry(auto_describe=True)
    return Telemetry(
        registry=registry,
        tracer_provider=TracerProvider(resource=Resource.create({"service.name": service})),
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
