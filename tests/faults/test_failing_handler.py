"""A handler that always fails: each message is retried a bounded number of times, with a
growing pause between attempts (no hot loop), then dead-lettered by the broker; none is lost.

Checked on the broker the tests run against (the version is printed): the kit's ack policy
(NACK_ON_ERROR, requeue) and its quorum queue arguments (`x-delivery-limit`,
`x-dead-letter-exchange`, `x-dead-letter-strategy: at-least-once`, `x-overflow:
reject-publish`) must really end with the message on `<queue>.dlq`, reason `delivery_limit`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from tests.faults.failing_service import FAILING, FAILING_DIRECT
from tests.support.cleanup import delete_namespace
from tests.support.faults import Report
from tests.support.probe import open_probe
from tests.support.system import free_port
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.topology import Queue
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.fault]

MESSAGES = 5
MAX_RETRY_RATE_PER_S = 5.0
"""Deliveries per second of one failing message while it is retried, at most."""


async def wait_ready(url: str, process: asyncio.subprocess.Process, timeout: float = 120) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(int(timeout / 0.25)):
            if process.returncode is not None:
                raise RuntimeError(f"the failing service exited with {process.returncode}")
            try:
                if (await client.get(f"{url}/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
    raise TimeoutError("the failing service is not ready")


def failures(log: Path) -> dict[str, list[tuple[datetime, int]]]:
    """Per message id, each `handler_failed` the kit logged: when, and the delivery count."""
    seen: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "handler_failed":
            when = datetime.fromisoformat(event["timestamp"])
            seen[event["message_id"]].append((when, int(event.get("delivery_count") or 0)))
    return seen


async def broker_version(url: str) -> str:
    async with await aio_pika.connect(url) as connection:
        properties: Any = connection.transport.connection.server_properties  # type: ignore[union-attr]
        version = properties.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("queue", [FAILING, FAILING_DIRECT], ids=["subscriber", "direct"])
async def test_a_message_that_always_fails_is_dead_lettered_after_bounded_paced_retries(
    queue: Queue, amqp_url: str, namespace: str, tmp_path: Path, report: Report
) -> None:
    port, log = free_port(), tmp_path / "failing-service.log"
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "VSM_NAMESPACE": namespace,
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.failing_service",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        async with open_probe(amqp_url, namespace) as probe:
            sent = [Envelope.wrap(Ping(), source="vsm/faults") for _ in range(MESSAGES)]
            for envelope in sent:
                await probe.channel.default_exchange.publish(
                    aio_pika.Message(
                        envelope.model_dump_json().encode(),
                        content_type="application/json",
                        message_id=envelope.id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=Namespace(namespace).name(queue.name),
                    mandatory=True,
                )
            parked = [await probe.get(queue.dead_letter_queue, timeout=90) for _ in range(MESSAGES)]
        version = await broker_version(amqp_url)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        extra = [FAILING, FAILING_DIRECT, topology.requests_queue("faults")]
        await delete_namespace(
            amqp_url, namespace, queues=[n for q in extra for n in (q.name, q.dead_letter_queue)]
        )

    attempts = failures(log)
    ids = {e.id for e in sent}
    deaths = [(m.headers or {}).get("x-death") or [] for m in parked]
    reasons = {str(d[0].get("reason")) for d in deaths if d}
    counts = {mid: len(attempts[mid]) for mid in ids}
    rates = {
        mid: (len(times) - 1) / max(1e-3, (times[-1][0] - times[0][0]).total_seconds())
        for mid, times in attempts.items()
        if mid in ids
    }
    spans = [(t[-1][0] - t[0][0]).total_seconds() for mid, t in attempts.items() if mid in ids]
    report(
        f"handler_always_fails ({queue.name})",
        broker=version,
        messages=MESSAGES,
        in_flight=MESSAGES,
        dead_lettered=len(parked),
        lost=len(ids - {m.message_id for m in parked}),
        deliveries_per_message=sorted(set(counts.values())),
        delivery_limit=topology.DELIVERY_LIMIT,
        retry_span_s=f"{min(spans):.2f}..{max(spans):.2f}",
        max_deliveries_per_s=round(max(rates.values()), 2),
        x_death_reasons=sorted(reasons),
    )
    assert {m.message_id for m in parked} == ids
    assert reasons == {"delivery_limit"}
    assert set(counts.values()) == {topology.DELIVERY_LIMIT + 1}
    assert max(rates.values()) <= MAX_RETRY_RATE_PER_S, rates
