"""S4 per viable system, rules and the outside environment, on the real broker.

A compound rule on a sensor raises exactly one pain signal when both readings hold for the
rule's duration and none while only one does; a child viable system has its own S4 (its
`/system/4` and the readiness in its viability) until it retires; an outside HTTP JSON
source the operator allows feeds S4's series and rules, and its garbage and silence are
counted and skipped; bad rules are refused at spawn and at `PUT /system/4/rules` with
their field, line and column.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from scripts.localrun import LocalSystem
from tests.support.cleanup import delete_namespace
from tests.support.listener import Listener, Reply
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.system import launch
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.intelligence import IntelligenceAlert
from vsm.contract.message import Message
from vsm.contract.operations import earlier_command_queue, results_exchange

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ANY = TypeAdapter(Envelope[Message])
SPAWNED: list[str] = []
BUDGET = {"concurrency_slots": 2, "llm_tokens_per_min": 0, "memory_mb": 64}
HOT_AND_FULL = {
    "name": "hot-and-full",
    "when": "cpu > 0.8 and mem > 0.9 for 2s",
    "then": "pain 0.8",
}


@pytest.fixture(scope="module")
def metrics_source() -> Iterator[Listener]:
    """What the sensor reads."""
    with Listener() as running:
        running.default = Reply(body={"cpu": 0.2, "mem": 0.2})
        yield running


@pytest.fixture(scope="module")
def feed() -> Iterator[Listener]:
    """The outside source S4 polls."""
    with Listener() as running:
        running.default = Reply(body={"market": {"value": 5}})
        yield running


@pytest.fixture(scope="module")
def silent() -> Iterator[str]:
    """An outside source that takes connections and never answers."""
    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(16)
        yield f"http://127.0.0.1:{quiet.getsockname()[1]}"


def endpoint(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


@pytest.fixture(scope="module")
def system(
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    metrics_source: Listener,
    feed: Listener,
    silent: str,
) -> Iterator[LocalSystem]:
    sources = [
        {
            "name": "feed",
            "url": f"{feed.url}/market",
            "readings": {"value": "$.market.value"},
            "interval_s": 1,
        },
        {
            "name": "quiet",
            "url": f"{silent}/x",
            "readings": {"value": "$.value"},
            "interval_s": 1,
            "timeout_s": 0.5,
        },
    ]
    standing = [{"name": "feed-high", "when": "feed.value > 10", "then": "alert warning"}]
    allowed = [metrics_source.url, feed.url, silent]
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        SCAN_INTERVAL="1",
        READINESS_INTERVAL="1",
        EGRESS_ALLOWED_URLS=json.dumps([f"{u}/" for u in allowed]),
        EGRESS_ALLOWED_PRIVATE=json.dumps([endpoint(u) for u in allowed]),
        S4_SOURCES=json.dumps(sources),
        S4_RULES=json.dumps(standing),
    )
    yield running
    running.stop()
    queues = [
        name
        for a in SPAWNED
        for name in (earlier_command_queue(a).name, earlier_command_queue(a).dead_letter_queue)
    ]
    exchanges = [results_exchange(a).name for a in SPAWNED]
    asyncio.run(
        delete_namespace(amqp_url, running.env["VSM_NAMESPACE"], queues=queues, exchanges=exchanges)
    )


async def spawn_sensor(gateway: httpx.AsyncClient, **config: Any) -> httpx.Response:
    answer = await gateway.post("/api/vsm/agents", json={"type": "sensor", "config": config})
    if answer.status_code == 201:
        SPAWNED.append(answer.json()["agent_id"])
    return answer


async def drain(probe: Probe, queue: str, seconds: float) -> list[Envelope[Any]]:
    """Every envelope that arrives on `queue` within `seconds`."""
    found: list[Envelope[Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            found.append(ANY.validate_json((await probe.get(queue, timeout=left)).body))
        except TimeoutError:
            break
    return found


async def test_a_compound_sensor_rule_hurts_once_when_both_hold_and_never_for_one(
    gateway: httpx.AsyncClient, system_probe: Probe, metrics_source: Listener
) -> None:
    felt = await system_probe.bind_queue("probe.felt", topology.ALGEDONIC.name)
    url = f"{metrics_source.url}/metrics"
    sensor = await spawn_sensor(
        gateway, source="http", url=url, interval_s=0.2, rules=[HOT_AND_FULL]
    )
    assert sensor.status_code == 201, sensor.text
    agent = sensor.json()["agent_id"]

    metrics_source.default = Reply(body={"cpu": 0.95, "mem": 0.5})  # only one holds
    one = await drain(system_probe, felt, 5.0)
    assert [e for e in one if e.data.reason == "hot-and-full"] == []

    metrics_source.default = Reply(body={"cpu": 0.95, "mem": 0.97})  # both, for long enough
    both = await drain(system_probe, felt, 8.0)
    [pain] = [e for e in both if e.data.reason == "hot-and-full"]
    assert isinstance(pain.data, AlgedonicSignal)
    assert (pain.data.kind, pain.data.intensity) == ("pain", 0.8)
    assert pain.data.origin == f"operations/{agent}"
    assert pain.data.context["cpu"] == 0.95
    assert pain.data.context["mem"] == 0.97
    assert (await gateway.delete(f"/api/vsm/agents/{agent}")).status_code == 200


async def test_a_bad_sensor_rule_is_refused_at_spawn_with_field_line_and_column(
    gateway: httpx.AsyncClient,
) -> None:
    rule = {"name": "r", "when": "load1 > 4 and\n  cpu > 0.8", "then": "pain 0.5"}
    refused = await spawn_sensor(gateway, rules=[rule])
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["details"]["errors"]
    assert problem["field"] == "config.rules.0.when"
    assert (problem["line"], problem["column"]) == (2, 3)
    assert "a host sensor reads no 'cpu'" in problem["message"]
    unbounded = {"name": "r", "when": "avg(load1) over 2h > 4", "then": "pain 0.5"}
    refused = await spawn_sensor(gateway, rules=[unbounded])
    assert refused.status_code == 422
    assert "windows are bounded" in refused.json()["details"]["errors"][0]["message"]


def s4_systems(system: LocalSystem) -> float:
    text = httpx.get(f"{system.url('intelligence')}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "vsm_s4_systems":
            return float(family.samples[0].value)
    raise AssertionError("intelligence exports no vsm_s4_systems")


async def test_a_child_has_its_own_s4_until_it_retires(
    gateway: httpx.AsyncClient, system: LocalSystem
) -> None:
    unknown = await gateway.get("/api/vsm/system/4", params={"vsm_id": "root/scouts"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "meta_system_not_found"
    body = {"name": "scouts", "purpose": "look around", "budget": BUDGET}
    created = await gateway.post("/api/vsm/meta-systems", json=body)
    assert created.status_code == 201, created.text

    async def own_s4() -> dict[str, Any] | None:
        reply = await gateway.get("/api/vsm/system/4", params={"vsm_id": "root/scouts"})
        return reply.json() if reply.status_code == 200 else None

    status = await eventually(own_s4, what="the child's S4")
    assert status["vsm_id"] == "root/scouts"
    assert status["series"] == 0
    assert s4_systems(system) == 2

    async def readiness_in_viability() -> dict[str, Any] | None:
        reply = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root/scouts"})
        terms = {t["name"]: t for t in reply.json()["viability"]["terms"]}
        return terms["s4_readiness"] if terms["s4_readiness"]["value"] is not None else None

    term = await eventually(readiness_in_viability, what="the child's S4 readiness")
    assert 0 <= term["value"] <= 1
    rules = [{"name": "busy", "when": "count(*) over 1m > 100", "then": "observe"}]
    declared = await gateway.put(
        "/api/vsm/system/4/rules", params={"vsm_id": "root/scouts"}, json={"rules": rules}
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["rules"] == rules
    root = (await gateway.get("/api/vsm/system/4")).json()
    assert root["rules"] == []
    assert root["standing_rules"] == 1

    retired = await gateway.delete("/api/vsm/meta-systems", params={"vsm_id": "root/scouts"})
    assert retired.status_code == 200, retired.text

    async def gone() -> bool:
        reply = await gateway.get("/api/vsm/system/4", params={"vsm_id": "root/scouts"})
        return reply.status_code == 404

    await eventually(gone, what="the child's S4 retired")
    assert s4_systems(system) == 1
    scan = await gateway.post("/api/vsm/system/4/scan", params={"vsm_id": "root/scouts"})
    assert scan.status_code == 404


async def test_an_outside_source_feeds_series_and_rules_and_its_failures_are_counted(
    gateway: httpx.AsyncClient, system_probe: Probe, feed: Listener
) -> None:
    alerts = await system_probe.bind_queue("probe.alerts", topology.INTELLIGENCE.name, "alert.*")

    async def polled() -> dict[str, Any] | None:
        status = (await gateway.get("/api/vsm/system/4")).json()
        sources = {s["name"]: s for s in status["sources"]}
        return status if sources["feed"]["last_readings"] == {"feed.value": 5.0} else None

    status = await eventually(polled, what="a poll of the feed")
    assert status["series"] >= 1
    feed.default = Reply(body={"market": {"value": 42}})
    found = await drain(system_probe, alerts, 6.0)
    [alert] = [e for e in found if isinstance(e.data, IntelligenceAlert) and e.data.kind == "rule"]
    assert alert.data.source == "intelligence/rule/feed-high"
    assert alert.data.evidence["feed.value"] == 42.0

    feed.default = Reply(body=b"<html>not json</html>")

    async def failing() -> dict[str, Any] | None:
        status = (await gateway.get("/api/vsm/system/4")).json()
        sources = {s["name"]: s for s in status["sources"]}
        feed_failed = sources["feed"]["last_failure"] == "not_json"
        return sources if feed_failed and sources["quiet"]["last_failure"] == "timeout" else None

    sources = await eventually(failing, what="garbage and silence counted")
    assert sources["quiet"]["polls"] == sources["quiet"]["failures"] >= 1
    assert (await gateway.get("/api/vsm/system/4")).status_code == 200  # S4 carries on


async def test_bad_rules_for_a_system_are_refused_whole_with_field_line_and_column(
    gateway: httpx.AsyncClient,
) -> None:
    rules = [
        {"name": "fine", "when": "feed.value > 1", "then": "observe"},
        {"name": "typo", "when": "feed.valu > 1", "then": "observe"},
        {"name": "long", "when": "count(x) over 90m > 1", "then": "observe"},
        {"name": "broken", "when": "x >", "then": "observe"},
    ]
    refused = await gateway.put("/api/vsm/system/4/rules", json={"rules": rules})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_rules"
    errors = refused.json()["details"]["errors"]
    assert [(e["field"], e["line"], e["column"]) for e in errors] == [
        ("rules.1.when", 1, 1),
        ("rules.2.when", 1, 15),
        ("rules.3.when", 1, 4),
    ]
    assert "source 'feed' reads no 'valu'" in errors[0]["message"]
    assert (await gateway.get("/api/vsm/system/4")).json()["rules"] == []
    malformed = await gateway.put("/api/vsm/system/4/rules", json={"rules": [{"name": "x"}]})
    assert malformed.status_code == 422


async def test_a_restarted_s4_reads_the_tree_and_keeps_a_state_for_each_child(
    gateway: httpx.AsyncClient, system: LocalSystem
) -> None:
    """Last in the module: it restarts intelligence (every S4 memory starts afresh)."""
    body = {"name": "survivors", "purpose": "outlive a restart", "budget": BUDGET}
    created = await gateway.post("/api/vsm/meta-systems", json=body)
    assert created.status_code == 201, created.text
    system.kill("intelligence", signal.SIGTERM)
    await asyncio.to_thread(system.processes["intelligence"].wait, 30)
    system.start(["intelligence"])
    await asyncio.to_thread(system.wait_ready, 120, ["intelligence"])

    async def known_again() -> dict[str, Any] | None:
        reply = await gateway.get("/api/vsm/system/4", params={"vsm_id": "root/survivors"})
        return reply.json() if reply.status_code == 200 else None

    status = await eventually(known_again, timeout=30, what="the child's S4 after a restart")
    assert status["vsm_id"] == "root/survivors"
    assert s4_systems(system) == 2
