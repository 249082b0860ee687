"""The llm_worker with the real SDK against the fake Messages API: config, deadline, errors."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from tests.support.commands import perform
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.spans import named, recorded_spans
from vsm.agent import AgentIdentity
from vsm.kit.egress import EgressPolicy, OnDemand
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm
from vsm.kit.llm_allowance import LlmAllowance
from vsm.kit.pricing import PriceTable
from vsm.operations.agents.base import CommandFailed, Resources
from vsm.operations.agents.llm_worker import LlmConfig, LlmWorker, trimmed
from vsm.operations.agents.outbound import Outbound


def llm_worker(config: LlmConfig, client: MeteredLlm | None, deadline_s: float) -> LlmWorker:
    """An llm_worker lent `client` (None: no key configured) and the retry deadline."""
    worker = LlmWorker(config, AgentIdentity("llm-1", "llm_worker"))
    nowhere = EgressPolicy()
    outbound = Outbound(OnDemand(nowhere, 1.0), nowhere)
    worker.borrow(Resources(outbound=outbound, llm=client, llm_retry_deadline_s=deadline_s))
    return worker


async def execute(worker: LlmWorker, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """The command as the runner does it, with the client the host lent the worker."""
    return await perform(worker, command, data, llm=worker.client)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="k") as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[MeteredLlm]:
    sdk = AsyncAnthropic(api_key="k", base_url=fake.url, max_retries=0)
    meter = LlmMeter(PriceTable.with_defaults({}), CollectorRegistry())
    yield MeteredLlm(sdk, meter, Caller("llm-1", "llm_worker", "root"))
    await sdk.close()


async def test_without_a_key_it_answers_llm_not_configured() -> None:
    worker = llm_worker(LlmConfig(), None, deadline_s=1)
    with pytest.raises(CommandFailed) as failed:
        await execute(worker, "chat", {"message": "hi"})
    assert failed.value.code == "llm_not_configured"


async def test_model_and_max_tokens_come_from_the_config(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    worker = llm_worker(LlmConfig(model="claude-test", max_tokens=7), client, deadline_s=5)
    result = await execute(worker, "chat", {"message": "echo me", "conversation_id": "c1"})
    assert result["text"] == "echo me"
    assert (fake.requests[0].model, fake.requests[0].max_tokens) == ("claude-test", 7)
    assert fake.requests[0].tools is None


async def test_429_is_retried_until_the_deadline_then_given_up(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    fake.fail_times(50, 429, retry_after=0.2)
    worker = llm_worker(LlmConfig(), client, deadline_s=0.5)
    with pytest.raises(CommandFailed) as failed:
        await execute(worker, "chat", {"message": "hi"})
    assert failed.value.code == "llm_unavailable"
    assert 2 <= len(fake.requests) <= 4


async def test_a_bad_request_is_not_retried(fake: FakeAnthropic, client: MeteredLlm) -> None:
    fake.fail(400)
    worker = llm_worker(LlmConfig(), client, deadline_s=5)
    with pytest.raises(CommandFailed) as failed:
        await execute(worker, "chat", {"message": "hi"})
    assert failed.value.code == "llm_error"
    assert len(fake.requests) == 1


def test_history_is_trimmed_at_a_plain_user_turn() -> None:
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "tool_use"}]},
        {"role": "user", "content": [{"type": "tool_result"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
    ]
    assert trimmed(history, 4) == history[4:]
    assert trimmed(history, 10) == history


# Tokens per minute and the daily cap ----------------------------------------------------
HAIKU = "claude-haiku-4-5"


def within(client: MeteredLlm, allowance: LlmAllowance) -> MeteredLlm:
    return client.on_behalf_of(client.caller, allowance)


async def test_a_call_beyond_the_daily_cap_fails_unsent_and_nothing_is_spent_beyond_it(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    """Each chat costs (1000 x 1 + 100 x 5) / 10^6 = 0.0015 USD; its worst case (the prompt's
    characters / 2 at 1.25 USD, 100 x 5 USD, per million) is about 0.0005 USD, so a cap of
    0.003 USD lets two chats through and refuses the third before sending it."""
    config = LlmConfig(model=HAIKU, max_tokens=100, daily_cap_usd=0.003)
    allowance = LlmAllowance(daily_cap_usd=config.daily_cap_usd)
    worker = llm_worker(config, within(client, allowance), deadline_s=5)
    for _ in range(5):
        fake.reply_text("ok", usage={"input_tokens": 1000, "output_tokens": 100})
    answered = 0
    failure: CommandFailed | None = None
    for number in range(5):
        try:
            await execute(worker, "chat", {"message": f"hi {number}", "conversation_id": "c1"})
        except CommandFailed as failed:
            failure = failed
            break
        answered += 1

    assert failure is not None
    exhausted = failure
    assert exhausted.code == "llm_budget_exhausted"
    assert exhausted.details["cap_usd"] == 0.003
    assert answered == 2
    assert len(fake.requests) == 2  # the third was never sent
    assert allowance.spent_usd == pytest.approx(2 * 0.0015)
    assert allowance.spent_usd <= 0.003
    assert allowance.reserved_usd == 0
    assert worker.state()["spent_today_usd"] == pytest.approx(0.003)


async def test_a_call_beyond_the_tokens_per_minute_waits_for_them(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    """6000 tokens a minute refill 100 a second: after a call of 6300 the bucket is 300
    short, so the next call waits about 3 s; it is not refused."""
    allowance = LlmAllowance(tokens_per_min=6000)
    worker = llm_worker(LlmConfig(model=HAIKU), within(client, allowance), deadline_s=5)
    fake.reply_text("big", usage={"input_tokens": 6000, "output_tokens": 300})
    fake.reply_text("small", usage={"input_tokens": 10, "output_tokens": 10})

    await execute(worker, "chat", {"message": "first"})
    second = await execute(worker, "chat", {"message": "second"})

    assert second["text"] == "small"
    first_at, second_at = (request.at for request in fake.requests)
    assert 2.5 <= second_at - first_at <= 6


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from recorded_spans()


async def test_each_messages_call_is_a_gen_ai_span_with_its_token_counts(
    fake: FakeAnthropic, client: MeteredLlm, spans: InMemorySpanExporter
) -> None:
    worker = llm_worker(LlmConfig(model="claude-test", max_tokens=64), client, deadline_s=5)
    await execute(worker, "chat", {"message": "count my tokens", "conversation_id": "c2"})

    (span,) = named(spans, "chat claude-test")
    attributes = span.attributes
    assert attributes is not None
    assert span.kind == SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == "anthropic"
    assert attributes["gen_ai.request.model"] == "claude-test"
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.response.model"] == "claude-test"
    assert str(attributes["gen_ai.response.id"]).startswith("msg")
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    input_tokens = attributes["gen_ai.usage.input_tokens"]
    output_tokens = attributes["gen_ai.usage.output_tokens"]
    assert isinstance(input_tokens, int)
    assert isinstance(output_tokens, int)
    assert input_tokens > 0
    assert output_tokens > 0


async def test_a_refused_call_leaves_its_error_on_the_span(
    fake: FakeAnthropic, client: MeteredLlm, spans: InMemorySpanExporter
) -> None:
    fake.fail(400)
    worker = llm_worker(LlmConfig(model="claude-test"), client, deadline_s=5)
    with pytest.raises(CommandFailed):
        await execute(worker, "chat", {"message": "hi"})

    (span,) = named(spans, "chat claude-test")
    assert span.attributes is not None
    assert span.attributes["error.type"] == "BadRequestError"
    assert span.status.status_code == StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in span.attributes
