"""LLM variety amplification with the real anthropic SDK against the fake Messages API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from tests.support.fake_anthropic import FakeAnthropic
from vsm.contract.intelligence import AlertExplanation, IntelligenceAlert
from vsm.intelligence.amplifier import TOOL, Amplifier, create_client
from vsm.kit.llm import Caller, LlmMeter
from vsm.kit.pricing import PriceTable

VSM_ID = "root/ops"

ALERT = IntelligenceAlert(
    alert_id="a-1",
    severity="warning",
    kind="anomaly",
    summary="operations/w1.actuality = 60, 12.0 standard deviations above its recent mean 10",
    series="operations/w1.actuality",
    source="operations/w1",
    evidence={"detector": "ewma_zscore", "value": 60.0, "mean": 10.0, "z": 12.0},
    detected_at=datetime.now(UTC),
)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def amplifier(fake: FakeAnthropic, registry: CollectorRegistry) -> AsyncIterator[Amplifier]:
    meter = LlmMeter(PriceTable.with_defaults({}), registry)
    caller = Caller("intelligence-1", "intelligence", "root")
    client = create_client(
        "test-key", fake.url, timeout_s=5, max_retries=1, meter=meter, caller=caller
    )
    amp = Amplifier(client, model="claude-test", max_pending=2)
    yield amp
    await amp.close()


async def explained_by(amplifier: Amplifier) -> list[AlertExplanation]:
    published: list[AlertExplanation] = []

    async def publish(explanation: AlertExplanation) -> None:
        published.append(explanation)

    amplifier.explain_later(ALERT, publish, VSM_ID)
    await asyncio.gather(*amplifier.tasks)
    return published


async def test_the_tool_answer_becomes_the_explanation(
    fake: FakeAnthropic, amplifier: Amplifier
) -> None:
    fake.reply_tool_use(
        TOOL, {"explanation": "A burst of load on w1.", "scenarios": ["it passes", "w1 saturates"]}
    )
    [explanation] = await explained_by(amplifier)
    assert explanation.alert_id == "a-1"
    assert explanation.explanation == "A burst of load on w1."
    assert explanation.scenarios == ["it passes", "w1 saturates"]
    assert explanation.model == "claude-test"
    sent = fake.requests[-1]
    assert sent.model == "claude-test"
    assert sent.api_key == "test-key"
    assert [t["name"] for t in sent.tools] == [TOOL]
    assert sent.body["tool_choice"] == {"type": "tool", "name": TOOL}
    assert "operations/w1.actuality" in sent.messages[0]["content"]
    assert amplifier.explained == 1


async def test_a_plain_text_answer_is_explanation_enough(
    fake: FakeAnthropic, amplifier: Amplifier
) -> None:
    fake.reply_text("Probably a deployment.")
    [explanation] = await explained_by(amplifier)
    assert explanation.explanation == "Probably a deployment."
    assert explanation.scenarios == []


async def test_a_failing_llm_publishes_nothing_and_is_counted(
    fake: FakeAnthropic, amplifier: Amplifier
) -> None:
    fake.fail_times(2, 529)  # the first try and the one retry
    assert await explained_by(amplifier) == []
    assert amplifier.failed == 1
    assert len(fake.requests) == 2


async def test_without_a_client_nothing_is_asked(fake: FakeAnthropic) -> None:
    amplifier = Amplifier(None, model="m", max_pending=2)
    assert not amplifier.enabled
    amplifier.explain_later(ALERT, lambda e: asyncio.sleep(0), VSM_ID)
    assert amplifier.tasks == set()
    assert fake.requests == []
    assert amplifier.details()["llm"] == "disabled"


async def test_explanations_in_flight_are_bounded(
    fake: FakeAnthropic, amplifier: Amplifier
) -> None:
    async def publish(explanation: AlertExplanation) -> None:
        return None

    for _ in range(5):
        amplifier.explain_later(ALERT, publish, VSM_ID)
    assert len(amplifier.tasks) == 2
    assert amplifier.skipped == 3
    await asyncio.gather(*amplifier.tasks)


async def test_an_explanation_is_charged_to_the_system_of_its_alert(
    fake: FakeAnthropic, amplifier: Amplifier, registry: CollectorRegistry
) -> None:
    fake.reply_tool_use(TOOL, {"explanation": "Load."}, usage={"output_tokens": 30})
    await explained_by(amplifier)
    labels = {"vsm_id": VSM_ID, "agent_type": "intelligence", "model": "other"}
    output = registry.get_sample_value("vsm_llm_tokens_total", {**labels, "direction": "output"})
    read = registry.get_sample_value("vsm_llm_tokens_total", {**labels, "direction": "input"})
    assert output == 30
    assert read
    cost = registry.get_sample_value("vsm_llm_cost_usd_total", labels)
    assert cost == pytest.approx((read * 15 + 30 * 75) / 1e6)  # an unknown model: `other`
