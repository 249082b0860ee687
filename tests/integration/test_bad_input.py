"""Bad input on any queue of the system is dead-lettered with its reason; nothing stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scripts.localrun import SERVICES, LocalSystem
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.health import HealthReport, Ping, Pong
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration


def envelope(message_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "bad-input-test",
            "source": "vsm/test",
            "type": message_type,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }
    ).encode()


# (owning service, queue, exchange, routing key, a valid type with a body that breaks its schema)
QUEUES = [
    ("queen", topology.SYSTEM5_HEALTH, topology.HEALTH, "", HealthReport.TYPE),
    *(
        (s, topology.requests_queue(s), topology.REQUESTS, f"{s}.anything", Ping.TYPE)
        for s in SERVICES
    ),
]
CASES = {
    "malformed_json": lambda valid_type: b'{"specversion": "1.0", "id": ',
    "invalid_schema": lambda valid_type: envelope(valid_type, {"no_such_field": 1}),
    "unknown_type": lambda valid_type: envelope("vsm.no-such-message.v1", {}),
}


async def dead_letter_count(system: LocalSystem, service: str, queue: str, reason: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{system.scrape_address(service)}/metrics")).text
    for line in text.splitlines():
        if (
            line.startswith("vsm_messages_dead_lettered_total{")
            and f'queue="{queue}"' in line
            and f'reason="{reason}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("reason", list(CASES))
@pytest.mark.parametrize(("service", "queue", "exchange", "key", "valid_type"), QUEUES)
async def test_bad_message_lands_in_the_dead_letter_queue_with_its_reason(
    system: LocalSystem,
    system_probe: Probe,
    service: str,
    queue: topology.Queue,
    exchange: topology.Exchange,
    key: str,
    valid_type: str,
    reason: str,
) -> None:
    full_name = system_probe.namespace.name(queue.name)
    before = await dead_letter_count(system, service, full_name, reason)
    body = CASES[reason](valid_type)

    await system_probe.publish_raw(exchange.name, body, routing_key=key)
    # The DLQ may hold others too (e.g. a request that expired in a queue before it was read).
    parked = await system_probe.get_matching(queue.dead_letter_queue, lambda m: m.body == body)

    assert parked.headers[REASON_HEADER] == reason
    assert parked.headers["x-vsm-dead-lettered-by"] == service
    assert await dead_letter_count(system, service, full_name, reason) == before + 1
    reply = await system_probe.bus.request(service, "ping", Ping())
    assert isinstance(reply.data, Pong)
