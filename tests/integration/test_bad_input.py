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
from vsm.contract.operations import AgentsSpawned, AgentsTerminated
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER

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


def _worker(agent_id: str, agent_type: str = "worker") -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "agent_type": agent_type,
        "allocation": 1,
        "max_allocation": 8,
        "spawned_at": datetime.now(UTC).isoformat(),
    }


BATCHES = {
    "empty": envelope(AgentsSpawned.TYPE, {"agents": []}),
    "mixed_types": envelope(
        AgentsSpawned.TYPE, {"agents": [_worker("w-a"), _worker("s-b", "sensor")]}
    ),
    "no_ids": envelope(
        AgentsTerminated.TYPE,
        {
            "agent_ids": [],
            "agent_type": "worker",
            "reason": "x",
            "terminated_at": datetime.now(UTC).isoformat(),
        },
    ),
}


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize(
    ("service", "queue", "key"),
    [
        ("control", topology.SYSTEM3_CONTROL, "s1.performance.x"),
        ("coordinator", topology.SYSTEM2_COORDINATION, "allocation.x.changed"),
    ],
)
async def test_a_malformed_registry_batch_is_dead_lettered_with_its_reason(
    system_probe: Probe, service: str, queue: topology.Queue, key: str, batch: str
) -> None:
    """A batch of registry events that is empty or mixes agent types is no event: S3 and S2
    dead-letter it (`invalid_schema`, the detail saying what is wrong) and carry on. It is
    sent to their intake queues the way `vsm.control` reaches them: the registry exchange
    would also append it to S1's log, which only operations writes."""
    body = BATCHES[batch]

    await system_probe.publish_raw(topology.CONTROL.name, body, routing_key=key)
    parked = await system_probe.get_matching(queue.dead_letter_queue, lambda m: m.body == body)

    assert parked.headers[REASON_HEADER] == "invalid_schema"
    detail = str(parked.headers[DETAIL_HEADER])
    assert ("one agent_type" in detail) if batch == "mixed_types" else ("at least 1" in detail)
    reply = await system_probe.bus.request(service, "ping", Ping())
    assert isinstance(reply.data, Pong)
