"""With an OTLP endpoint set (the standard variable alone), a REST call becomes one trace
across services.

The services export their spans over OTLP/HTTP to a loopback receiver that decodes the
protobuf requests. Every span that belongs to the call's conversation (FastStream records
the correlation id as `messaging.message.conversation_id`) must be in one trace whose root
is mcp-gateway's server span for the request, with each span's parent in that trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from scripts.localrun import LocalSystem
from tests.observability.otlp import OtlpReceiver, ReceivedSpan
from tests.observability.system import running_system
from tests.support.tokens import gateway_client

# Generous: the fixture waits up to 180 s for seven services to start on a busy machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CONVERSATION = "messaging.message.conversation_id"
ROUTING_KEY = "messaging.rabbitmq.destination.routing_key"
DEADLINE_S = 30


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def traced_system(
    amqp_url: str, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    # Stopped before the receiver closes (fixtures end in reverse): each flushes its spans.
    with running_system(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",  # ms: export batches promptly
    ) as running:
        yield running


def conversation(receiver: OtlpReceiver, message_id: str) -> list[ReceivedSpan]:
    """The conversation's spans and every other span of their traces (the request's own)."""
    spans = receiver.spans
    traces = {s.trace_id for s in spans if s.attributes.get(CONVERSATION) == message_id}
    return [s for s in spans if s.trace_id in traces]


def wait_for_services(
    receiver: OtlpReceiver, message_id: str, services: set[str]
) -> list[ReceivedSpan]:
    """The conversation's spans once `services` all sent some (then a moment for the rest)."""
    deadline = time.monotonic() + DEADLINE_S
    while not services <= {s.service for s in conversation(receiver, message_id)}:
        if time.monotonic() > deadline:
            seen = {s.service for s in conversation(receiver, message_id)}
            pytest.fail(f"no spans from {services - seen} within {DEADLINE_S} s (seen: {seen})")
        time.sleep(0.2)
    time.sleep(2)
    return conversation(receiver, message_id)


def assert_one_trace(spans: list[ReceivedSpan], root: str) -> None:
    """One trace whose only root is mcp-gateway's server span named `root`, no span orphaned."""
    assert len({s.trace_id for s in spans}) == 1, {(s.service, s.name, s.trace_id) for s in spans}
    ids = {s.span_id for s in spans}
    roots = [(s.service, s.name, s.kind) for s in spans if not s.parent_id]
    assert roots == [("mcp-gateway", root, Span.SpanKind.SPAN_KIND_SERVER)], roots
    orphans = [s for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans, orphans


def assert_server_span(span: ReceivedSpan, path: str, status: int) -> None:
    """The request's attributes, as OpenTelemetry's HTTP semantic conventions name them."""
    method, route = span.name.split(maxsplit=1)
    assert span.attributes["http.request.method"] == method, span
    assert span.attributes["http.route"] == route, span
    assert span.attributes["url.path"] == path, span
    assert span.attributes["http.response.status_code"] == status, span


async def test_pain_through_rest_is_one_trace_across_the_services_it_reaches(
    traced_system: LocalSystem, receiver: OtlpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    async with gateway_client(traced_system) as gateway:
        response = await gateway.post("/api/vsm/algedonic/pain", json={"intensity": 0.9})
    assert response.status_code == 202, response.text

    # vsm.algedonic fans out to S5 and S4; strong pain makes S5 publish further (policy, ...).
    spans = await asyncio.to_thread(
        wait_for_services, receiver, response.json()["id"], {"mcp-gateway", "queen", "intelligence"}
    )
    assert_one_trace(spans, root="POST /api/vsm/algedonic/pain")
    (server,) = [s for s in spans if not s.parent_id]
    assert_server_span(server, "/api/vsm/algedonic/pain", 202)
    services = sorted({s.service for s in spans})
    with capsys.disabled():
        print(f"\none trace of {len(spans)} spans from a REST pain signal across {services}")


async def test_an_agent_command_through_rest_is_one_trace_from_mcp_gateway(
    traced_system: LocalSystem, receiver: OtlpReceiver
) -> None:
    # A sensor: S4 reads the results of sensors (a worker's reach it only as performance
    # reports), so the command's trace crosses mcp-gateway, operations and intelligence.
    sensor = {"type": "sensor", "config": {"interval_s": 3600}}
    async with gateway_client(traced_system, timeout=30) as gateway:
        spawned = await gateway.post("/api/vsm/agents", json=sensor)
        assert spawned.status_code == 201, spawned.text
        agent_id = spawned.json()["agent_id"]
        done = await gateway.post(f"/api/vsm/agents/{agent_id}/command", json={"type": "read"})
    assert done.status_code == 200, done.text

    read = f".{agent_id}.read"

    def spans_of_command() -> list[ReceivedSpan]:
        """The trace of the agent's handling (its routing key names the agent), once S4 has
        the result."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            spans = receiver.spans
            handled = [s for s in spans if str(s.attributes.get(ROUTING_KEY)).endswith(read)]
            traces = {s.trace_id for s in handled if s.service == "operations"}
            found = [s for s in spans if s.trace_id in traces]
            if {"operations", "intelligence"} <= {s.service for s in found}:
                return found
            time.sleep(0.2)
        pytest.fail(f"no spans from operations and intelligence for {agent_id}'s command")

    spans = await asyncio.to_thread(spans_of_command)
    assert_one_trace(spans, root="POST /api/vsm/agents/{agent_id}/command")
    (server,) = [s for s in spans if not s.parent_id]
    assert_server_span(server, f"/api/vsm/agents/{agent_id}/command", 200)
