"""The metered LLM client with the real SDK against the fake Messages API: what a call costs,
under which labels, and the price table an operator may (and may not) set."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from anthropic import AsyncAnthropic, InternalServerError
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from tests.support.fake_anthropic import FakeAnthropic
from vsm.contract.llm import LlmUsage
from vsm.kit.llm import Caller, LlmMeter, LlmSettings, MeteredLlm
from vsm.kit.llm_allowance import LlmAllowance, LlmBudgetExhausted
from vsm.kit.pricing import DEFAULT_PRICES, OTHER, PriceTable, Tokens

CALLER = Caller("llm-1", "llm_worker", "root/ops")
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def reports() -> list[LlmUsage]:
    return []


@pytest.fixture
async def llm(
    fake: FakeAnthropic, registry: CollectorRegistry, reports: list[LlmUsage]
) -> AsyncIterator[MeteredLlm]:
    async def report(usage: LlmUsage, caller: Caller) -> None:
        reports.append(usage)

    client = AsyncAnthropic(api_key="k", base_url=fake.url, max_retries=0)
    yield MeteredLlm(client, LlmMeter(PriceTable.with_defaults({}), registry, report), CALLER)
    await client.close()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_cost_is_each_direction_at_its_price() -> None:
    table = PriceTable.with_defaults({})
    tokens = Tokens(input=1_000_000, output=2_000_000, cache_write=400_000, cache_read=10_000_000)
    # Sonnet 4.5: 3 in, 15 out, 3.75 cache write, 0.30 cache read per million
    assert table.cost("claude-sonnet-4-5", tokens) == pytest.approx(3 + 30 + 1.5 + 3)


def test_a_dated_model_is_its_model_and_an_unknown_one_is_other() -> None:
    table = PriceTable.with_defaults({})
    assert table.entry("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert table.entry("claude-haiku-4-5") == "claude-haiku-4-5"
    assert table.entry("claude-opus-4-5@20251101") == "claude-opus-4-5"
    assert table.entry("gpt-9") == OTHER
    dearest = max(DEFAULT_PRICES.values(), key=lambda p: p.output)
    assert table.prices[OTHER] == dearest


async def test_a_call_counts_its_usage_prices_it_and_reports_it(
    fake: FakeAnthropic, llm: MeteredLlm, registry: CollectorRegistry, reports: list[LlmUsage]
) -> None:
    usage = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_creation_input_tokens": 400,
        "cache_read_input_tokens": 5000,
    }
    fake.reply_text("hi", usage=usage)
    reply = await llm.create(model="claude-haiku-4-5-20251001", max_tokens=64, messages=HELLO)

    assert reply.content[0].type == "text"
    labels = {"vsm_id": "root/ops", "agent_type": "llm_worker", "model": "claude-haiku-4-5"}
    counted = {
        direction: sample(registry, "vsm_llm_tokens_total", **labels, direction=direction)
        for direction in ("input", "output", "cache_write", "cache_read")
    }
    assert counted == {"input": 1000, "output": 200, "cache_write": 400, "cache_read": 5000}
    cost = (1000 * 1 + 200 * 5 + 400 * 1.25 + 5000 * 0.1) / 1e6
    assert sample(registry, "vsm_llm_cost_usd_total", **labels) == pytest.approx(cost)
    ok = {"agent_type": "llm_worker", "model": "claude-haiku-4-5", "outcome": "ok"}
    assert sample(registry, "vsm_llm_call_duration_seconds_count", **ok) == 1
    [record] = reports
    assert (record.agent_id, record.model, record.cache_read_tokens) == (
        "llm-1",
        labels["model"],
        5000,
    )
    assert record.cost_usd == pytest.approx(cost)


async def test_a_failed_call_is_timed_and_costs_nothing(
    fake: FakeAnthropic, llm: MeteredLlm, registry: CollectorRegistry, reports: list[LlmUsage]
) -> None:
    fake.fail(500)
    with pytest.raises(InternalServerError):
        await llm.create(model="claude-haiku-4-5", max_tokens=64, messages=HELLO)
    error = {"agent_type": "llm_worker", "model": "claude-haiku-4-5", "outcome": "error"}
    assert sample(registry, "vsm_llm_call_duration_seconds_count", **error) == 1
    assert (
        registry.get_sample_value("vsm_llm_cost_usd_total", {**error, "vsm_id": "root/ops"}) is None
    )
    assert reports == []


async def test_labels_stay_bounded(
    fake: FakeAnthropic, llm: MeteredLlm, registry: CollectorRegistry
) -> None:
    llm.meter.vsm_ids.limit = 1
    await llm.for_system("root/a").create(model="made-up-model", max_tokens=8, messages=HELLO)
    await llm.for_system("root/b").create(model="made-up-model", max_tokens=8, messages=HELLO)
    output = {"agent_type": "llm_worker", "model": OTHER, "direction": "output"}
    assert sample(registry, "vsm_llm_tokens_total", vsm_id="root/a", **output)
    assert sample(registry, "vsm_llm_tokens_total", vsm_id=OTHER, **output)
    assert sample(registry, "vsm_llm_tokens_total", vsm_id="root/b", **output) is None


def test_the_operators_prices_add_to_and_replace_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prices = {
        "claude-haiku-4-5": {"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2},
        "my-model": {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1},
    }
    monkeypatch.setenv("LLM_PRICES", json.dumps(prices))
    table = LlmSettings().price_table()
    assert table.prices["claude-haiku-4-5"].input == 2
    assert table.entry("my-model") == "my-model"
    assert table.prices["claude-sonnet-4-5"] == DEFAULT_PRICES["claude-sonnet-4-5"]


@pytest.mark.parametrize(
    ("price", "field"),
    [
        ({"input": -1, "output": 1, "cache_write": 1, "cache_read": 1}, "input"),
        ({"input": 1, "output": 1e9, "cache_write": 1, "cache_read": 1}, "output"),
        ({"input": 1, "output": 1, "cache_write": 1}, "cache_read"),
    ],
)
def test_a_negative_absurd_or_missing_price_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, price: dict[str, float], field: str
) -> None:
    monkeypatch.setenv("LLM_PRICES", json.dumps({"claude-haiku-4-5": price}))
    with pytest.raises(ValidationError, match=rf"llm_prices\.claude-haiku-4-5\.{field}"):
        LlmSettings()


async def test_a_call_past_the_share_s3_allocated_is_refused_unsent_and_reported(
    fake: FakeAnthropic, llm: MeteredLlm, registry: CollectorRegistry, reports: list[LlmUsage]
) -> None:
    allowance = LlmAllowance(daily_cap_usd=5.0, share_usd=0.000001)  # S3's share binds
    capped = llm.on_behalf_of(CALLER, allowance)
    with pytest.raises(LlmBudgetExhausted) as refused:
        await capped.create(model="claude-haiku-4-5", max_tokens=64, messages=HELLO)

    assert refused.value.cap_usd == 0.000001
    assert fake.requests == []
    [record] = reports
    assert (record.refused, record.cost_usd, record.input_tokens) == (True, 0.0, 0)
    labels = {"vsm_id": "root/ops", "agent_type": "llm_worker", "model": "claude-haiku-4-5"}
    assert sample(registry, "vsm_llm_cost_usd_total", **labels) is None
