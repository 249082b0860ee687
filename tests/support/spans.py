"""The spans a test's code made, through the process's global tracer provider (the one a
service sets when tracing is on), kept in memory by the OpenTelemetry SDK's exporter."""

from __future__ import annotations

from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def global_provider() -> TracerProvider:
    """The global SDK provider, set here if nothing set one yet (it can be set once)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "the global tracer provider is not the SDK's"
    return provider


def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """A fixture body: every span ended while the test runs."""
    exporter = InMemorySpanExporter()
    global_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays with the provider; its exporter takes no more


def named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name.startswith(prefix)]
