"""Hostile variety leaves no trace: made-up names and ids, sent by the thousand, do not grow
any service's `/metrics`, its memory (`process_resident_memory_bytes`) nor S5's state.

Labels come from closed sets (an agent's command is its type's declared command or `other`;
routing keys past a service's first few hundred become `<exchange>.other`), and a query
about a viable system that does not exist is a 404 that creates nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import ring, signed
from tests.support.hostile import MCP_TOKEN, SIGNING_KEYS
from tests.support.tokens import OPERATE_TOKEN, bearer, gateway_client, mcp_session
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

COMMANDS = 1_000
"""Made-up command names: before the bounds, as many grew operations' `/metrics` by about
70,000 samples (issue 23). A shared CI machine takes about 8 a second through the gateway."""
SYSTEM_IDS = 5_000
"""Made-up viable-system ids asked about: before, each made queen keep state and export it."""
BOUND = 1_000
"""Samples a service's `/metrics` may gain over the flood: the system's own traffic still
opens a few routes during it (each a family of about 40 samples: counters and histogram
buckets), while the made-up names, unbounded, added tens of thousands."""
CONCURRENCY = 16
REST_IDS = 12_000
MCP_IDS = 8_000
"""20,000 made-up viable-system ids in all: REST spread over every system's state route, MCP
through the official SDK client (`vsm_check_viability`)."""
MESSAGE_IDS = 10_000
"""Made-up message ids looked up in the trail (each request with a made-up trace id in its
`traceparent`), and as many signed messages naming made-up causes and traces."""
RSS_BOUND = 48 * 1024 * 1024
"""Bytes a service's resident memory may gain over the floods. Python keeps the arenas it
grew for the requests in flight, whatever they were about; state kept per made-up id, at
about 2 KB each (what queen held before the bounds), would add some 40 MB for the ids alone."""
STATE_ROUTES = ("/api/vsm/system/5", "/api/vsm/system/4", "/api/vsm/system/3")
STATE_ROUTES += ("/api/vsm/system/2", "/api/vsm/meta-systems")


async def scrape(system: LocalSystem) -> dict[str, dict[str, float]]:
    """Each service's samples on `/metrics` (name and labels of every line not a comment, with
    its value)."""
    found = {}
    async with httpx.AsyncClient(headers=bearer(OPERATE_TOKEN), timeout=30) as http:
        for service in SERVICES:
            answer = await http.get(f"http://{system.scrape_address(service)}/metrics")
            assert answer.status_code == 200, (service, answer.status_code)
            found[service] = {
                key: float(value)
                for key, value in (
                    line.rsplit(" ", 1)
                    for line in answer.text.splitlines()
                    if line and not line.startswith("#")
                )
            }
    return found


async def samples(system: LocalSystem) -> dict[str, set[str]]:
    return {service: set(found) for service, found in (await scrape(system)).items()}


def resident(scraped: dict[str, dict[str, float]]) -> dict[str, float]:
    return {service: found["process_resident_memory_bytes"] for service, found in scraped.items()}


def grown_by_metric(before: set[str], after: set[str]) -> dict[str, int]:
    """The new samples, counted by metric name: what grew, for the failure message."""
    return dict(Counter(key.split("{", 1)[0] for key in after - before).most_common(8))


async def flood(
    count: int, one: Callable[[int], Awaitable[None]], concurrency: int = CONCURRENCY
) -> None:
    pending = iter(range(count))

    async def worker() -> None:
        for index in pending:
            await one(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def test_made_up_commands_and_system_ids_leave_metrics_and_state_bounded(
    hostile_system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker"})
    assert spawned.status_code == 201, spawned.text
    agent_id = spawned.json()["agent_id"]
    run = uuid.uuid4().hex[:6]

    async def command(index: int) -> None:
        name = f"made_up_{run}_{index}"
        sent = await gateway.post(
            f"/api/vsm/agents/{agent_id}/command", json={"type": name, "timeout_s": 30}
        )
        assert sent.status_code == 200, sent.text  # the agent answers: an error result
        assert sent.json()["status"] == "error", sent.text

    async def system_5(index: int) -> None:
        asked = await gateway.get("/api/vsm/system/5", params={"vsm_id": f"root/x{run}{index}"})
        assert asked.status_code == 404, asked.text

    # A few first, so the `other` series exist before the count starts.
    await flood(20, command)
    await flood(20, system_5)
    known = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root"})
    assert known.status_code == 200, known.text
    before = await samples(hostile_system)

    started = time.monotonic()
    await flood(COMMANDS, command)
    commanded = time.monotonic()
    await flood(SYSTEM_IDS, system_5)
    print(
        f"{COMMANDS} made-up commands in {commanded - started:.1f} s, "
        f"{SYSTEM_IDS} made-up system ids in {time.monotonic() - commanded:.1f} s"
    )

    after = await samples(hostile_system)
    grown = {service: len(after[service]) - len(before[service]) for service in SERVICES}
    what = {service: grown_by_metric(before[service], after[service]) for service in SERVICES}
    assert all(grown[service] <= BOUND for service in SERVICES), f"{grown}\n{what}"
    state = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root"})
    assert state.status_code == 200, state.text
    assert f"x{run}" not in state.text  # no made-up system among S5's


async def drained(amqp_url: str, system: LocalSystem, *queues: topology.Queue) -> None:
    """Wait until S5 and S4 have consumed what was published (a slow machine lags)."""
    ns = Namespace(system.env["VSM_NAMESPACE"])
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for _ in range(600):
            counts = [
                (await channel.declare_queue(ns.name(q.name), passive=True)).declaration_result
                for q in queues
            ]
            if all(c.message_count == 0 for c in counts):
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the published messages were not consumed within 300 s")


def made_up_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def test_made_up_system_message_and_trace_ids_by_the_ten_thousand_leave_no_trace(
    hostile_system: LocalSystem, amqp_url: str
) -> None:
    # Idle connections are dropped before the server's keep-alive (5 s) closes them under us.
    limits = httpx.Limits(keepalive_expiry=2)
    async with gateway_client(hostile_system, timeout=60, limits=limits) as gateway:
        await made_up_ids_leave_no_trace(hostile_system, gateway, amqp_url)


async def made_up_ids_leave_no_trace(
    hostile_system: LocalSystem, gateway: httpx.AsyncClient, amqp_url: str
) -> None:
    run = uuid.uuid4().hex[:6]
    mcp_url = f"{hostile_system.url('mcp-gateway')}/mcp"

    async def rest_system(index: int) -> None:
        route = STATE_ROUTES[index % len(STATE_ROUTES)]
        asked = await gateway.get(route, params={"vsm_id": f"root/r{run}{index}"})
        # S5, S4 and the tree know no such system (404); S3 and S2 answer an empty view of one.
        assert asked.status_code in (200, 404), (route, asked.status_code, asked.text)

    async def mcp_systems(count: int, first: int) -> None:
        """`count` calls over one SDK session, `CONCURRENCY // 2` of them in flight."""
        async with mcp_session(mcp_url, MCP_TOKEN) as session:

            async def one(index: int) -> None:
                vsm_id = f"root/m{run}{first + index}"
                result = await session.call_tool("vsm_check_viability", {"vsm_id": vsm_id})
                assert result.is_error, result
                assert "not_found" in str(result.content), result.content

            await flood(count, one, CONCURRENCY // 2)

    async def trace(index: int) -> None:
        asked = await gateway.get(
            f"/api/vsm/trace/{uuid.uuid4()}", headers={"traceparent": made_up_traceparent()}
        )
        assert asked.status_code == 404, asked.text

    async def caused_by_nobody(count: int) -> None:
        """Signed pleasure, each naming a made-up cause and trace: S5, S4 and the trail read it."""
        keys, ns = ring(SIGNING_KEYS), Namespace(hostile_system.env["VSM_NAMESPACE"])
        exchange = ns.name(topology.ALGEDONIC.name)
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            target = await channel.get_exchange(exchange)
            for _ in range(count):
                body = AlgedonicSignal(
                    kind="pleasure", intensity=0.01, origin="test/hostile", reason="made-up cause"
                )
                envelope = Envelope.wrap(body, source="vsm/test").model_copy(
                    update={
                        "causation_id": str(uuid.uuid4()),
                        "traceparent": made_up_traceparent(),
                        "time": datetime.now(UTC),
                    }
                )
                await target.publish(signed(envelope, keys, exchange, ""), "")

    # A few of each first, so the series the floods touch exist before the count starts.
    await flood(20, rest_system)
    await mcp_systems(8, -100)
    await flood(20, trace)
    await caused_by_nobody(20)
    await asyncio.sleep(2)
    scraped = await scrape(hostile_system)
    before, rss_before = {k: set(v) for k, v in scraped.items()}, resident(scraped)

    started = time.monotonic()
    await flood(REST_IDS, rest_system)
    rested = time.monotonic()
    await asyncio.gather(*(mcp_systems(MCP_IDS // 4, n * MCP_IDS) for n in range(4)))
    mcped = time.monotonic()
    await flood(MESSAGE_IDS, trace)
    await caused_by_nobody(MESSAGE_IDS)
    await drained(
        amqp_url, hostile_system, topology.SYSTEM5_ALGEDONIC, topology.SYSTEM4_INTELLIGENCE
    )
    traced = time.monotonic()
    scraped = await scrape(hostile_system)
    after, rss_after = {k: set(v) for k, v in scraped.items()}, resident(scraped)
    rss_grown = {s: int(rss_after[s] - rss_before[s]) for s in SERVICES}
    print(
        f"\n{REST_IDS} made-up system ids over REST in {rested - started:.1f} s, {MCP_IDS} over "
        f"MCP in {mcped - rested:.1f} s, {MESSAGE_IDS} trace lookups and as many made-up "
        f"causes in {traced - mcped:.1f} s\nRSS before (MiB) "
        f"{ {s: round(v / 2**20, 1) for s, v in rss_before.items()} }\nRSS grown (MiB) "
        f"{ {s: round(v / 2**20, 1) for s, v in rss_grown.items()} }"
    )

    grown = {service: len(after[service]) - len(before[service]) for service in SERVICES}
    what = {service: grown_by_metric(before[service], after[service]) for service in SERVICES}
    assert all(grown[service] <= BOUND for service in SERVICES), f"{grown}\n{what}"
    assert all(rss_grown[s] <= RSS_BOUND for s in SERVICES), rss_grown
    for route in ("/api/vsm/system/5", "/api/vsm/meta-systems"):
        state = await gateway.get(route, params={"vsm_id": "root"})
        assert state.status_code == 200, state.text
        assert f"r{run}" not in state.text
        assert f"m{run}" not in state.text
