"""The llm_worker with the real SDK against the fake Messages API: config, deadline, errors."""

from collections.abc import AsyncIterator, Iterator

import pytest
from anthropic import AsyncAnthropic
from prometheus_client import CollectorRegistry

from tests.support.fake_anthropic import FakeAnthropic
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm
from vsm.kit.pricing import PriceTable
from vsm.operations.agents.base import CommandFailed
from vsm.operations.agents.llm_worker import LlmConfig, LlmWorker, trimmed


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
    worker = LlmWorker(LlmConfig(), None, deadline_s=1)
    with pytest.raises(CommandFailed) as failed:
        await worker.execute("chat", {"message": "hi"})
    assert failed.value.code == "llm_not_configured"


async def test_model_and_max_tokens_come_from_the_config(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    worker = LlmWorker(LlmConfig(model="claude-test", max_tokens=7), client, deadline_s=5)
    result = await worker.execute("chat", {"message": "echo me", "conversation_id": "c1"})
    assert result["text"] == "echo me"
    assert (fake.requests[0].model, fake.requests[0].max_tokens) == ("claude-test", 7)
    assert fake.requests[0].tools is None


async def test_429_is_retried_until_the_deadline_then_given_up(
    fake: FakeAnthropic, client: MeteredLlm
) -> None:
    fake.fail_times(50, 429, retry_after=0.2)
    worker = LlmWorker(LlmConfig(), client, deadline_s=0.5)
    with pytest.raises(CommandFailed) as failed:
        await worker.execute("chat", {"message": "hi"})
    assert failed.value.code == "llm_unavailable"
    assert 2 <= len(fake.requests) <= 4


async def test_a_bad_request_is_not_retried(fake: FakeAnthropic, client: MeteredLlm) -> None:
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
