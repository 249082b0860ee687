"""Every LLM call metered and priced, on the real broker with the real `anthropic` client
against the fake Messages API: an llm_worker's chat, S5's synthesis and S4's explanation of
an alert each show their tokens and cost on their service's /metrics, under the caller's
viable system and agent type, and each leaves an `LlmUsage` record on `vsm.control`. A price
table with a negative price stops a service before it starts, naming the field. An
llm_worker's calls wait for the tokens per minute S3 allocates it, and past its daily cap
fail with `llm_budget_exhausted` without reaching the API."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.localrun import LocalSystem
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.polling import eventually
from tests.support.probe import Probe, open_probe
from tests.support.system import launch, shut_down
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.control import AllocationChanged, Resources, allocation_key
from vsm.contract.llm import LlmUsage
from vsm.contract.performance import UnitPerformance, performance_key
from vsm.kit.bus import AnyEnvelope

pytestmark = pytest.mark.integration

API_KEY = "test-key"
HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
USAGE = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_creation_input_tokens": 800,
    "cache_read_input_tokens": 4000,
}
HAIKU_COST = (1200 * 1 + 300 * 5 + 800 * 1.25 + 4000 * 0.1) / 1e6
SONNET_COST = (1200 * 3 + 300 * 15 + 800 * 3.75 + 4000 * 0.3) / 1e6


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def cost_system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic
) -> Iterator[LocalSystem]:
    """The services that call Claude, and the gateway to ask them."""
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        services=("operations", "queen", "intelligence", "mcp-gateway"),
        ANTHROPIC_MODEL=SONNET,
        LLM_MAX_RETRIES="0",
        **fake.env(API_KEY),
    )
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
async def rest(cost_system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(cost_system, timeout=40) as client:
        yield client


@pytest.fixture
async def probe(amqp_url: str, cost_system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, cost_system.env["VSM_NAMESPACE"]) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_script(fake: FakeAnthropic) -> None:
    fake.reset()


async def scrape(system: LocalSystem, service: str) -> dict[tuple[str, frozenset[Any]], float]:
    """The service's samples, by name and labels."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{system.scrape_address(service)}/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def usage_records(probe: Probe, queue: str, count: int) -> list[AnyEnvelope]:
    records = []
    for _ in range(count):
        message = await probe.get(queue, timeout=30)
        records.append(AnyEnvelope.validate_json(message.body))
    return records


async def test_an_llm_worker_chat_is_counted_priced_and_reported(
    cost_system: LocalSystem, rest: httpx.AsyncClient, probe: Probe, fake: FakeAnthropic
) -> None:
    vsm_id = f"root/cost-{secrets.token_hex(3)}"
    usage = await probe.bind_queue(
        f"test.llm-usage.{secrets.token_hex(3)}", topology.CONTROL.name, "llm.usage.llm_worker"
    )
    spawned = await rest.post(
        "/api/vsm/agents",
        json={"type": "llm_worker", "config": {"model": HAIKU, "tools": ["checksum"]}},
        params={"vsm_id": vsm_id},
    )
    assert spawned.status_code == 201, spawned.text
    agent_id = spawned.json()["agent_id"]
    fake.reply_tool_use("checksum", {"text": "abc"}, usage=USAGE).reply_text("Done.", usage=USAGE)

    chat = await rest.post(
        f"/api/vsm/agents/{agent_id}/command", json={"type": "chat", "data": {"message": "hash"}}
    )

    assert chat.json()["status"] == "ok", chat.text
    samples = await scrape(cost_system, "operations")
    labels = {"vsm_id": vsm_id, "agent_type": "llm_worker", "model": HAIKU}
    tokens = {
        direction: value(samples, "vsm_llm_tokens_total", **labels, direction=direction)
        for direction in ("input", "output", "cache_write", "cache_read")
    }
    assert tokens == {"input": 2400, "output": 600, "cache_write": 1600, "cache_read": 8000}
    assert value(samples, "vsm_llm_cost_usd_total", **labels) == pytest.approx(2 * HAIKU_COST)
    calls = {"agent_type": "llm_worker", "model": HAIKU, "outcome": "ok"}
    assert value(samples, "vsm_llm_call_duration_seconds_count", **calls) >= 2
    llm_labels = [labels for (name, labels) in samples if name.startswith("vsm_llm_")]
    assert not any(agent_id in str(labels) for labels in llm_labels), "an agent id is a label"

    records = await usage_records(probe, usage, 2)
    for record in records:
        assert isinstance(record.data, LlmUsage)
        assert record.vsm_id == vsm_id
        assert (record.data.agent_id, record.data.model) == (agent_id, HAIKU)
        assert record.data.cost_usd == pytest.approx(HAIKU_COST)


async def test_s5_synthesis_is_charged_to_the_system_it_decides_for(
    cost_system: LocalSystem, rest: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    vsm_id = f"root/cost-s5-{secrets.token_hex(3)}"
    proposal = {
        "rationale": "latency: slow it gently",
        "policy": {"policy_type": "throttle", "limits": [{"target": "a-1", "max_rate_per_s": 5}]},
    }
    fake.reply_tool_use("propose_policy", proposal, usage=USAGE)

    synthesis = await rest.post(
        "/api/vsm/system5/synthesis",
        json={"anomaly_type": "latency", "severity": 0.6, "context": {"agent_id": "a-1"}},
        params={"vsm_id": vsm_id},
        timeout=60,
    )

    assert synthesis.json()["llm_outcome"] == "used", synthesis.text
    samples = await scrape(cost_system, "queen")
    labels = {"vsm_id": vsm_id, "agent_type": "queen", "model": SONNET}
    assert value(samples, "vsm_llm_tokens_total", **labels, direction="cache_read") == 4000
    assert value(samples, "vsm_llm_cost_usd_total", **labels) == pytest.approx(SONNET_COST)


async def test_s4_explaining_an_alert_is_charged_to_the_system_of_the_alert(
    cost_system: LocalSystem, probe: Probe, fake: FakeAnthropic
) -> None:
    fake.default_reply = "A burst of work."
    agent = f"probe-{secrets.token_hex(3)}"
    key = performance_key(agent)
    normal = [10.0, 10.4, 9.7, 10.2, 9.9, 10.3, 9.6, 10.1, 10.0, 9.8, 10.2, 9.9, 10.1, 10.3]
    for actuality in [*normal, 60.0]:
        report = UnitPerformance(
            agent_id=agent,
            agent_type="worker",
            window_s=5,
            actuality=actuality,
            capability=20,
            potentiality=40,
        )
        await probe.bus.publish(topology.CONTROL, report, routing_key=key)

    labels = {"vsm_id": "root", "agent_type": "intelligence", "model": SONNET}

    async def explained() -> float:
        samples = await scrape(cost_system, "intelligence")
        return value(samples, "vsm_llm_cost_usd_total", **labels)

    cost = await eventually(explained, timeout=30, what="the explanation's cost on /metrics")
    assert [r for r in fake.requests if agent in str(r.messages)], "S4 asked nothing"
    samples = await scrape(cost_system, "intelligence")
    read = value(samples, "vsm_llm_tokens_total", **labels, direction="input")
    written = value(samples, "vsm_llm_tokens_total", **labels, direction="output")
    assert read > 0
    assert cost == pytest.approx((read * 3 + written * 15) / 1e6)


def test_a_negative_price_stops_start_up_naming_the_field(tmp_path: Any) -> None:
    prices = {HAIKU: {"input": -1, "output": 5, "cache_write": 1.25, "cache_read": 0.1}}
    nowhere = "amqp://guest:guest@127.0.0.1:1/"  # were it to start, it would reach no broker
    env = {**os.environ, "LLM_PRICES": json.dumps(prices), "HTTP_PORT": "0", "AMQP_URL": nowhere}
    started = subprocess.run(
        [sys.executable, "-m", "vsm.operations"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode != 0
    assert f"llm_prices.{HAIKU}.input" in started.stderr
    assert "greater than or equal to 0" in started.stderr


# Tokens per minute and the daily cap of an llm_worker ---------------------------------------
async def spawn_llm_worker(rest: httpx.AsyncClient, vsm_id: str, **config: Any) -> str:
    body = {"type": "llm_worker", "config": {"model": HAIKU, **config}}
    spawned = await rest.post("/api/vsm/agents", json=body, params={"vsm_id": vsm_id})
    assert spawned.status_code == 201, spawned.text
    return str(spawned.json()["agent_id"])


async def chat(rest: httpx.AsyncClient, agent_id: str, message: str) -> dict[str, Any]:
    body = {"type": "chat", "data": {"message": message, "conversation_id": "c"}}
    response = await rest.post(f"/api/vsm/agents/{agent_id}/command", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_past_its_daily_cap_an_llm_worker_fails_and_sends_nothing_more(
    cost_system: LocalSystem, rest: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    """Each chat costs 0.0015 USD, its worst case about 0.0005 USD: a cap of 0.003 USD lets
    two through and refuses the third unsent."""
    vsm_id = f"root/cost-cap-{secrets.token_hex(3)}"
    agent_id = await spawn_llm_worker(rest, vsm_id, max_tokens=100, daily_cap_usd=0.003)
    for _ in range(4):
        fake.reply_text("ok", usage={"input_tokens": 1000, "output_tokens": 100})

    results = [await chat(rest, agent_id, f"hello {n}") for n in range(4)]

    assert [r["status"] for r in results] == ["ok", "ok", "error", "error"], results
    assert results[2]["error"]["code"] == "llm_budget_exhausted"
    assert len([r for r in fake.requests if r.path == "/v1/messages"]) == 2
    samples = await scrape(cost_system, "operations")
    labels = {"vsm_id": vsm_id, "agent_type": "llm_worker", "model": HAIKU}
    spent = value(samples, "vsm_llm_cost_usd_total", **labels)
    assert spent == pytest.approx(0.003)
    assert spent <= 0.003


async def test_an_allocation_of_tokens_per_minute_makes_the_next_call_wait(
    rest: httpx.AsyncClient, probe: Probe, fake: FakeAnthropic
) -> None:
    """S3 allocates 6000 tokens a minute (100 a second); a call of 6300 tokens leaves the
    agent 300 short, so its next call waits about 3 s, and then succeeds."""
    agent_id = await spawn_llm_worker(rest, f"root/cost-rate-{secrets.token_hex(3)}")
    allocation = AllocationChanged(
        agent_id=agent_id,
        agent_type="llm_worker",
        resources=Resources(concurrency_slots=4, llm_tokens_per_min=6000),
        reason="test",
    )
    await probe.bus.publish(topology.CONTROL, allocation, routing_key=allocation_key(agent_id))

    async def allocated() -> bool:
        audit = {"agent_id": agent_id, "audit_type": "resource_audit"}
        report = (await rest.post("/api/vsm/audit/bypass", json=audit)).json()["report"]
        return bool(report["llm_tokens_per_min"] == 6000)

    await eventually(allocated, what="the allocation taken by the agent")
    fake.reply_text("big", usage={"input_tokens": 6000, "output_tokens": 300})
    fake.reply_text("small", usage={"input_tokens": 10, "output_tokens": 10})

    first = await chat(rest, agent_id, "first")
    second = await chat(rest, agent_id, "second")

    assert (first["status"], second["status"]) == ("ok", "ok"), (first, second)
    first_at, second_at = (r.at for r in fake.requests if r.path == "/v1/messages")
    assert 2.5 <= second_at - first_at <= 8
