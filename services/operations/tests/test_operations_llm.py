"""The llm_worker with the real SDK against the fake Messages API: config, deadline, errors."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic

from tests.support.fake_anthropic import FakeAnthropic
from vsm.operations.agents.base import CommandFailed
from vsm.operations.agents.llm_worker import LLM_WORKER, LlmConfig, LlmWorker, trimmed


async def execute(behaviour: Any, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """The command as an agent does it: input validated, then the behaviour's method."""
    return await LLM_WORKER.commands[command].perform(behaviour, data)


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
        await execute(worker, "chat", {"message": "hi"})
    assert failed.value.code == "llm_not_configured"


async def test_model_and_max_tokens_come_from_the_config(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    worker = LlmWorker(LlmConfig(model="claude-test", max_tokens=7), client, deadline_s=5)
    result = await execute(worker, "chat", {"message": "echo me", "conversation_id": "c1"})
    assert result["text"] == "echo me"
    assert (fake.requests[0].model, fake.requests[0].max_tokens) == ("claude-test", 7)
    assert fake.requests[0].tools is None


async def test_429_is_retried_until_the_deadline_then_given_up(
    fake: FakeAnthropic, client: AsyncAnthropic
) -> None:
    fake.fail_times(50, 429, retry_after=0.2)
    worker = LlmWorker(LlmConfig(), client, deadline_s=0.5)
    with pytest.raises(CommandFailed) as failed:
        await execute(worker, "chat", {"message": "hi"})
    assert failed.value.code == "llm_unavailable"
    assert 2 <= len(fake.requests) <= 4


async def test_a_bad_request_is_not_retried(fake: FakeAnthropic, client: AsyncAnthropic) -> None:
    fake.fail(400)
    worker = LlmWorker(LlmConfig(), client, deadline_s=5)
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
