"""Every consumed quorum queue of the system dead-letters bad input with its reason.

`test_bad_input.py` covers the three cases (malformed JSON, wrong schema, unknown type)
with the metrics on the foundation's queues; each system's own tests cover its schemas.
This sweeps the two type-independent cases over every shared quorum queue, generated from
the contract, so a queue added later cannot be forgotten. (Streams are event logs with no
dead-letter queue; they are written only by their owners.)
"""

from __future__ import annotations

import json
import secrets

import pytest

from scripts.localrun import SERVICES
from tests.support.probe import Probe
from vsm.contract import telegram, topology
from vsm.contract.health import Ping, Pong
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

QUEUES = [
    q
    for q in (*topology.SHARED_QUEUES, telegram.TELEGRAM_COMMANDS)
    if q.kind == "quorum" and q.bindings
]


def concrete(routing_key: str) -> str:
    """A routing key that matches the binding pattern `routing_key`."""
    return ".".join("x" if part in {"*", "#"} else part for part in routing_key.split("."))


BODIES = {
    "malformed_json": lambda marker: b'{"marker": "' + marker.encode() + b'", ',
    "unknown_type": lambda marker: json.dumps(
        {"type": "vsm.no-such-message.v1", "id": marker, "data": {}}
    ).encode(),
}


@pytest.mark.parametrize("reason", list(BODIES))
@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.name)
async def test_bad_input_on_every_queue_is_dead_lettered_with_its_reason(
    system_probe: Probe, queue: topology.Queue, reason: str
) -> None:
    marker = secrets.token_hex(8)
    body = BODIES[reason](marker)
    binding = queue.bindings[0]

    await system_probe.publish_raw(
        binding.exchange.name, body, routing_key=concrete(binding.routing_key)
    )
    parked = await system_probe.get_matching(
        queue.dead_letter_queue, lambda message: message.body == body
    )

    assert parked.headers[REASON_HEADER] == reason
    for service in SERVICES:
        reply = await system_probe.bus.request(service, "ping", Ping())
        assert isinstance(reply.data, Pong)
