"""The llm_worker with the real SDK against the fake Messages API: config, deadline, errors."""

from collections.abc import AsyncIterator, Iterator

import pytest
from anthropic import AsyncAnthropic
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.spans import named, recorded_spans
from vsm.operations.agents.base import CommandFailed
from vsm.operations.agents.llm_worker import LlmConfig, LlmWorker, trimmed


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="k") as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[AsyncAnthropic]:
    sdk = AsyncAnthropic(api_key="k", base_url=fake.url, max_retries=0)
    yield sdk
    await sdk.close()


async def test_without_a_key_it_answers_llm_not_configured() -> None:
    worker = LlmWorker(LlmConfig(), None, deadline_s=1)
    with pytest.raises(CommandFailed) as failed:
        await worker.execute("chat", {"message": "hi"})
    assert failed.value.code == "llm_not_configured"


async def test_model_and_max_tokens_come_from_the_config(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    worker = LlmWorker(LlmConfig(model="claude-test", max_tokens=7), client, deadline_s=5)
    result = await worker.execute("chat", {"message": "echo me", "conversation_id": "c1"})
    assert result["text"] == "echo me"
    assert (fake.requests[0].model, fake.requests[0].max_tokens) == ("claude-test", 7)
    assert fake.requests[0].tools is None


async def test_429_is_retried_until_the_deadline_then_given_up(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.fail_times(50, 429, retry_after=0.2)
    worker = LlmWorker(LlmConfig(), client, deadline_s=0.5)
    with pytest.raises(CommandFailed) as failed:
        await worker.execute("chat", {"message": "hi"})
    assert failed.value.code == "llm_unavailable"
    assert 2 <= len(fake.requests) <= 4


async def test_a_bad_request_is_not_retried(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    fake.fail(400)
    worker = LlmWorker(LlmConfig(), client, deadline_s=5)
    with pytest.raises(CommandFailed) as failed:
        await worker.execute("chat", {"message": "hi"})
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


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from recorded_spans()


async def test_each_messages_call_is_a_gen_ai_span_with_its_token_counts(
    fake: FakeAnthropic, client: AsyncAnthropic, spans: InMemorySpanExporter
) -> None:
    worker = LlmWorker(LlmConfig(model="claude-test", max_tokens=64), client, deadline_s=5)
    await worker.execute("chat", {"message": "count my tokens", "conversation_id": "c2"})

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
    fake: FakeAnthropic, client: AsyncAnthropic, spans: InMemorySpanExporter
) -> None:
    fake.fail(400)
    worker = LlmWorker(LlmConfig(model="claude-test"), client, deadline_s=5)
    with pytest.raises(CommandFailed):
        await worker.execute("chat", {"message": "hi"})

    (span,) = named(spans, "chat claude-test")
    assert span.attributes is not None
    assert span.attributes["error.type"] == "BadRequestError"
    assert span.status.status_code == StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in span.attributes
