"""Bad input to S4 and to the algedonic REST entry: a clear error, nothing published, nothing
lost, and the services keep running."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping, Pong
from vsm.contract.intelligence import Observation, observation_key
from vsm.contract.message import Message
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

ANY = TypeAdapter(Envelope[Message])


def envelope(message_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "s4-bad-input",
            "source": "vsm/test",
            "type": message_type,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }
    ).encode()


def with_nan_value() -> bytes:
    good = envelope(Observation.TYPE, {"source": "radar", "event_type": "x", "values": {"v": 1}})
    return good.replace(b'{"v": 1}', b'{"v": NaN}')


# (queue, exchange, routing key, body, reason)
CASES = {
    "malformed_json": (
        topology.SYSTEM4_INTELLIGENCE,
        topology.INTELLIGENCE,
        "observation.radar",
        b'{"specversion": ',
        "malformed_json",
    ),
    "unknown_type": (
        topology.SYSTEM4_INTELLIGENCE,
        topology.ALGEDONIC,
        "",
        envelope("vsm.no-such-message.v1", {}),
        "unknown_type",
    ),
    "observation_with_bad_event_type": (
        topology.SYSTEM4_INTELLIGENCE,
        topology.INTELLIGENCE,
        "observation.radar",
        envelope(Observation.TYPE, {"source": "radar", "event_type": "no spaces!"}),
        "invalid_schema",
    ),
    "observation_with_nan": (
        topology.SYSTEM4_INTELLIGENCE,
        topology.INTELLIGENCE,
        "observation.radar",
        with_nan_value(),
        "invalid_schema",
    ),
    "adaptation_request_with_pain_above_1": (
        topology.SYSTEM4_INTELLIGENCE,
        topology.INTELLIGENCE,
        "adaptation.request",
        envelope(
            "vsm.s4.adaptation.request.v1",
            {"intervention_id": "iv", "trigger": "t", "pain_level": 3},
        ),
        "invalid_schema",
    ),
    "health_report_without_fields": (
        topology.SYSTEM4_HEALTH,
        topology.HEALTH,
        "",
        envelope("vsm.health.report.v1", {"service": "x"}),
        "invalid_schema",
    ),
}


async def series_count(gateway: httpx.AsyncClient) -> int:
    response = await gateway.get("/api/vsm/system/4")
    assert response.status_code == 200, response.text
    return int(response.json()["series"])


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_messages_to_s4_are_dead_lettered_with_their_reason_and_s4_goes_on(
    system_probe: Probe, gateway: httpx.AsyncClient, case: str
) -> None:
    queue, exchange, key, body, reason = CASES[case]
    await system_probe.publish_raw(exchange.name, body, routing_key=key)

    parked = await system_probe.get(queue.dead_letter_queue)
    while parked.body != body:  # a fanout may have parked an earlier case's copy here too
        parked = await system_probe.get(queue.dead_letter_queue)
    assert parked.headers[REASON_HEADER] == reason
    assert parked.headers["x-vsm-dead-lettered-by"] == "intelligence"

    before = await series_count(gateway)
    good = Observation(source="radar", event_type="after-bad-input", values={case: 1.0})
    await system_probe.bus.publish(
        topology.INTELLIGENCE, good, routing_key=observation_key(good.source)
    )
    deadline = time.monotonic() + 10
    while await series_count(gateway) != before + 1:
        assert time.monotonic() < deadline, "the good message after the bad one was lost"
        await asyncio.sleep(0.1)
    reply = await system_probe.bus.request("intelligence", "ping", Ping())
    assert isinstance(reply.data, Pong)


BAD_SIGNALS = [
    ("pain", {"intensity": 1.5}, 422, "intensity"),
    ("pleasure", {"intensity": -0.1}, 422, "intensity"),
    ("pain", {"context": {"why": "no intensity"}}, 422, "intensity"),
    ("pain", {"intensity": 0.5, "colour": "red"}, 422, "colour"),
    ("pain", {"intensity": 0.5, "context": "not an object"}, 422, "context"),
]


@pytest.mark.parametrize(("signal", "body", "status", "field"), BAD_SIGNALS)
async def test_bad_algedonic_input_is_a_422_naming_the_field(
    gateway: httpx.AsyncClient, signal: str, body: dict[str, Any], status: int, field: str
) -> None:
    response = await gateway.post(f"/api/vsm/algedonic/{signal}", json=body)
    assert response.status_code == status, response.text
    assert field in [f["field"] for f in response.json()["fields"]]


async def test_an_unknown_signal_type_is_a_404_that_says_what_is_allowed(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post("/api/vsm/algedonic/tickle", json={"intensity": 0.5})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_signal"
    assert "tickle" in response.json()["message"]
    assert "pain" in response.json()["message"]


async def test_malformed_json_is_a_400(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/vsm/algedonic/pain",
        content=b'{"intensity": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_bad_signals_publish_nothing_and_a_good_one_reaches_the_algedonic_exchange(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    felt = await system_probe.bind_queue("test.algedonic", topology.ALGEDONIC.name, "")
    for signal, body, _, _ in BAD_SIGNALS:
        await gateway.post(f"/api/vsm/algedonic/{signal}", json=body)
    await gateway.post("/api/vsm/algedonic/tickle", json={"intensity": 0.5})

    response = await gateway.post(
        "/api/vsm/algedonic/pain",
        json={"intensity": 0.4, "context": {"ticket": "OPS-1"}, "reason": "customer_complaint"},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()

    first = ANY.validate_json((await system_probe.get(felt)).body)
    assert first.id == accepted["id"]  # nothing the bad requests sent came before it
    assert isinstance(first.data, AlgedonicSignal)
    assert first.data.kind == "pain"
    assert first.data.intensity == 0.4
    assert first.data.origin == "mcp-gateway/rest"
    assert first.data.reason == "customer_complaint"
    assert first.data.context == {"ticket": "OPS-1"}
    with pytest.raises(TimeoutError):
        await system_probe.get(felt, timeout=1.0)


async def test_without_an_llm_s4_says_so_and_still_works(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/vsm/system/4")
    assert response.status_code == 200
    assert response.json()["llm"] == "disabled"
