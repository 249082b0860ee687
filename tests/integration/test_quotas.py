"""Quotas and caps on a running system: every REST body capped at 1 MiB, policy documents
capped, agents per viable system and meta-systems in total bounded (409 `quota_exceeded`),
work for an agent that does not run refused rather than parked, a per-caller REST rate, and
the dead-letter queues' fill on the gateway's `/metrics`."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.polling import eventually
from tests.support.tokens import READ_TOKEN, gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AGENTS = 3
META_TOTAL = 2
POLICY_BYTES = 2048
RATE = 40
BULK_MAX = 8
"""REST requests a minute per token: the read token's, used by the rate test alone, runs out;
the operate token's other tests stay well under it."""


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return {
        "AGENTS_PER_SYSTEM": str(AGENTS),
        "META_MAX_TOTAL": str(META_TOTAL),
        "POLICY_MAX_BYTES": str(POLICY_BYTES),
        "REST_RATE_LIMIT": str(RATE),
        "DEAD_LETTER_WATCH_S": "0.5",
        "REST_BULK_SPAWN_MAX": str(BULK_MAX),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/vsm/identity"),
        ("PUT", "/api/vsm/system/3/budget"),
        ("PUT", "/api/vsm/system/4/rules"),
        ("POST", "/api/vsm/algedonic/pain"),
        ("POST", "/api/vsm/system5/decision"),
        ("POST", "/api/vsm/meta-systems"),
        ("POST", "/api/vsm/agents"),
        ("POST", "/api/vsm/agents:bulk"),
        ("POST", "/api/vsm/agents:bulk-terminate"),
    ],
)
async def test_a_body_over_1_mib_is_refused_on_every_route(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    body = b'{"policy": {"x": "' + b"a" * (1024 * 1024) + b'"}}'
    reply = await gateway.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"] == "request_entity_too_large"


async def test_a_policy_document_over_its_cap_is_refused_naming_the_limit(
    gateway: httpx.AsyncClient,
) -> None:
    identity = {"purpose": "p" * POLICY_BYTES, "values": [], "constraints": []}
    reply = await gateway.put("/api/vsm/identity", json={"policy": identity})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_policy"
    assert "POLICY_MAX_BYTES" in reply.json()["message"]
    small = await gateway.put("/api/vsm/identity", json={"policy": {"purpose": "fit"}})
    assert small.status_code == 200, small.text


async def test_a_spawn_past_the_agents_of_a_system_is_a_409_until_one_is_terminated(
    gateway: httpx.AsyncClient,
) -> None:
    vsm = {"vsm_id": f"root/quota{uuid.uuid4().hex[:6]}"}
    ids = []
    for _ in range(AGENTS):
        spawned = await gateway.post("/api/vsm/agents", params=vsm, json={"type": "worker"})
        assert spawned.status_code == 201, spawned.text
        ids.append(spawned.json()["agent_id"])
    over = await gateway.post("/api/vsm/agents", params=vsm, json={"type": "worker"})
    assert over.status_code == 409, over.text
    assert over.json()["error"] == "quota_exceeded"
    assert over.json()["details"]["quota"] == "AGENTS_PER_SYSTEM"
    elsewhere = await gateway.post("/api/vsm/agents", json={"type": "worker"})
    assert elsewhere.status_code == 201, elsewhere.text  # a quota per viable system
    assert (await gateway.delete(f"/api/vsm/agents/{ids[0]}")).status_code == 200
    again = await gateway.post("/api/vsm/agents", params=vsm, json={"type": "worker"})
    assert again.status_code == 201, again.text


async def test_a_bulk_spawn_answers_each_item_counting_the_ones_before_it_against_the_quota(
    gateway: httpx.AsyncClient,
) -> None:
    vsm = {"vsm_id": f"root/bulk{uuid.uuid4().hex[:6]}"}
    items = [
        {"type": "worker", "name": "first"},
        {"type": "worker", "config": {"allocation": 0}},
        {"type": "robot"},
        {"type": "worker", "name": "first"},
        {"type": "worker"},
        {"type": "worker", "name": "third"},
        {"type": "worker"},
    ]
    reply = await gateway.post("/api/vsm/agents:bulk", params=vsm, json={"agents": items})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["spawned"], answer["refused"]) == (AGENTS, 4)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [(r["status"], r["error"]) for r in results] == [
        (201, None),
        (422, "invalid_config"),
        (422, "invalid_agent_type"),
        (409, "name_taken"),
        (201, None),
        (201, None),
        (409, "quota_exceeded"),
    ]
    assert results[1]["details"]["errors"][0]["field"] == "config.allocation"
    assert results[6]["details"]["quota"] == "AGENTS_PER_SYSTEM"
    spawned = [r["agent"] for r in results if r["agent"] is not None]
    assert [a["name"] for a in spawned] == ["first", None, "third"]
    for agent in spawned:
        assert agent["vsm_id"] == vsm["vsm_id"]
        known = await gateway.get(f"/api/vsm/agents/{agent['agent_id']}")
        assert known.status_code == 200, known.text
        assert known.json()["state"] == "running"
    full = await gateway.post("/api/vsm/agents:bulk", params=vsm, json={"agents": items[4:5]})
    assert full.json()["results"][0]["error"] == "quota_exceeded"  # the quota holds across calls
    for agent in spawned:
        assert (await gateway.delete(f"/api/vsm/agents/{agent['agent_id']}")).status_code == 200


async def test_a_bulk_spawn_with_a_malformed_item_or_too_many_spawns_nothing(
    gateway: httpx.AsyncClient,
) -> None:
    vsm = {"vsm_id": f"root/bulk{uuid.uuid4().hex[:6]}"}
    malformed = {"agents": [{"type": "worker"}, {"config": {}}]}
    reply = await gateway.post("/api/vsm/agents:bulk", params=vsm, json=malformed)
    assert reply.status_code == 422, reply.text
    assert any(f["field"].startswith("agents") for f in reply.json()["fields"])
    too_many = {"agents": [{"type": "worker"}] * (BULK_MAX + 1)}
    reply = await gateway.post("/api/vsm/agents:bulk", params=vsm, json=too_many)
    assert reply.status_code == 422, reply.text
    assert reply.json()["fields"][0]["field"] == "agents"
    assert "REST_BULK_SPAWN_MAX" in reply.json()["message"]
    empty = await gateway.post("/api/vsm/agents:bulk", params=vsm, json={"agents": []})
    assert empty.status_code == 422, empty.text
    listed = await gateway.get("/api/vsm/agents")
    assert all(a["vsm_id"] != vsm["vsm_id"] for a in listed.json())


async def test_meta_systems_past_the_total_are_refused_whatever_the_parent(
    gateway: httpx.AsyncClient,
) -> None:
    budget = {"concurrency_slots": 1}
    for name, parent in (("t1", "root"), ("t2", "root/t1")):
        body = {"name": name, "purpose": "p", "budget": budget}
        made = await gateway.post("/api/vsm/meta-systems", params={"vsm_id": parent}, json=body)
        assert made.status_code == 201, made.text
    third = {"name": "t3", "purpose": "p", "budget": budget}
    refused = await gateway.post("/api/vsm/meta-systems", params={"vsm_id": "root"}, json=third)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "quota_exceeded"
    assert "META_MAX_TOTAL" in refused.json()["message"]


async def test_a_zero_budget_is_refused_naming_the_field(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.put(
        "/api/vsm/system/3/budget", params={"vsm_id": "root/zero"}, json={"memory_mb": 64}
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_budget"
    assert reply.json()["details"]["field"] == "budget.concurrency_slots"


async def test_work_for_an_agent_that_does_not_run_is_a_404_and_parks_nothing(
    gateway: httpx.AsyncClient,
) -> None:
    async def parked() -> int:
        counts = (await gateway.get("/api/vsm/dead-letters/")).json()
        return sum(q["count"] or 0 for q in counts)

    before = await parked()
    work = {"lane": "default", "agent_id": "no-such-agent", "command_type": "process_data"}
    reply = await gateway.post("/api/vsm/work", json=work | {"data": {"x": "a" * 100_000}})
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "agent_not_found"
    await asyncio.sleep(1)
    assert await parked() == before


async def test_past_its_rest_rate_a_caller_gets_429_with_retry_after_and_others_do_not(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    async with gateway_client(system, READ_TOKEN) as reader:
        answers = [await reader.get("/api/vsm/status") for _ in range(RATE + 1)]
    assert [a.status_code for a in answers[:RATE]] == [200] * RATE
    limited = answers[RATE]
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await gateway.get("/api/vsm/status")).status_code == 200  # another token


async def test_the_gateway_exports_each_dead_letter_queue_s_fill_and_cap(
    system: LocalSystem,
) -> None:
    async def scraped() -> str | None:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{system.scrape_address('mcp-gateway')}/metrics")).text
        return (
            text if 'vsm_dead_letter_queue_messages{queue="vsm.s1.commands.dlq"}' in text else None
        )

    text = await eventually(scraped, timeout=20)
    assert "vsm_dead_letter_queue_limit 10000.0" in text
