"""researcher through the SDK's runner with a real `anthropic` client against the fake
Messages API on loopback: the tool-use loop round-trips tool_use and tool_result, bounded
turns, tokens counted, a typed refusal without an LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from vsm_example_agents import Researcher

from tests.support.fake_anthropic import FakeAnthropic
from vsm.agent import AgentIdentity, Invocation, RunningAgent, spawn

GLOSSARY = {
    "VSM": "The Viable System Model: five systems that keep an organisation viable.",
    "algedonic": "A pain or pleasure signal sent straight to System 5.",
}
TURN = {"input_tokens": 100, "output_tokens": 20}


class SdkLlm:
    """What a host lends an agent, reduced to the call: the SDK's `messages.create`."""

    def __init__(self, client: AsyncAnthropic) -> None:
        self.client = client

    async def create(self, **request: Any) -> Any:
        return await self.client.messages.create(**request)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="k") as server:
        yield server


@pytest.fixture
async def llm(fake: FakeAnthropic) -> AsyncIterator[SdkLlm]:
    client = AsyncAnthropic(api_key="k", base_url=fake.url, max_retries=0)
    yield SdkLlm(client)
    await client.close()


async def researcher(llm: SdkLlm | None, **config: Any) -> RunningAgent:
    config = {"model": "claude-test", "glossary": GLOSSARY, **config}
    return await spawn(Researcher, config, AgentIdentity("researcher-1", "researcher"), llm=llm)


def error_code(outcome: Any) -> str:
    assert outcome.result.error is not None, outcome.result
    return str(outcome.result.error.code)


async def test_the_model_uses_the_tools_then_answers(fake: FakeAnthropic, llm: SdkLlm) -> None:
    fake.reply_tool_use("lookup", {"term": "vsm"}, "Let me look.", tool_id="toolu_a", usage=TURN)
    counted = {"text": "five systems keep it"}
    fake.reply_tool_use("word_count", counted, tool_id="toolu_b", usage=TURN)
    fake.reply_text("The VSM has five systems.", usage=TURN)
    running = await researcher(llm, max_tokens=300)

    done = await running.run(Invocation("ask", {"question": "What is the VSM?"}))

    assert done.result.status == "ok", done.result.error
    answer = done.result.result
    assert answer is not None
    assert answer["text"] == "The VSM has five systems."
    assert [(c["name"], c["input"], c["is_error"]) for c in answer["tools_used"]] == [
        ("lookup", {"term": "vsm"}, False),
        ("word_count", {"text": "five systems keep it"}, False),
    ]
    assert answer["tools_used"][0]["result"] == GLOSSARY["VSM"]
    assert answer["tools_used"][1]["result"] == '{"words": 4, "characters": 20}'
    assert (answer["turns"], answer["input_tokens"], answer["output_tokens"]) == (3, 300, 60)

    first, second, third = fake.requests
    assert (first.model, first.max_tokens) == ("claude-test", 300)
    assert [tool["name"] for tool in first.tools] == ["word_count", "lookup"]
    assert first.tools[1]["input_schema"]["required"] == ["term"]
    assert first.messages == [{"role": "user", "content": "What is the VSM?"}]
    # The model's tool_use went back as it came, answered by a tool_result with its id.
    assert second.messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {"term": "vsm"}},
        ],
    }
    assert second.messages[2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_a",
                "content": GLOSSARY["VSM"],
                "is_error": False,
            }
        ],
    }
    assert third.messages[4]["content"][0]["tool_use_id"] == "toolu_b"
    assert len(third.messages) == 5

    audit = running.audit()
    assert audit == {
        "questions": 1,
        "answered": 1,
        "turns": 3,
        "tool_calls": {"lookup": 1, "word_count": 1},
        "input_tokens": 300,
        "output_tokens": 60,
    }


async def test_a_tool_that_cannot_answer_tells_the_model(fake: FakeAnthropic, llm: SdkLlm) -> None:
    fake.reply_tool_use("lookup", {"term": "cybernetics"}, tool_id="toolu_x")
    fake.reply_tool_use("search_web", {"q": "beer"}, tool_id="toolu_y")
    fake.reply_text("I do not know.")
    running = await researcher(llm)

    done = await running.run(Invocation("ask", {"question": "What is cybernetics?"}))

    assert done.result.result is not None
    calls = done.result.result["tools_used"]
    assert [(c["name"], c["is_error"]) for c in calls] == [("lookup", True), ("search_web", True)]
    assert "known terms: VSM, algedonic" in calls[0]["result"]
    sent = fake.requests[1].messages[2]["content"][0]
    assert (sent["tool_use_id"], sent["is_error"]) == ("toolu_x", True)


async def test_turns_are_bounded(fake: FakeAnthropic, llm: SdkLlm) -> None:
    for _ in range(3):
        fake.reply_tool_use("word_count", {"text": "again"})
    running = await researcher(llm, max_turns=2)

    done = await running.run(Invocation("ask", {"question": "Count forever."}))

    assert error_code(done) == "too_many_turns"
    assert done.result.error is not None
    assert done.result.error.details == {"turns": 2, "tools_used": ["word_count", "word_count"]}
    assert len(fake.requests) == 2
    assert running.audit()["turns"] == 2


async def test_without_an_llm_the_question_is_refused(fake: FakeAnthropic) -> None:
    running = await researcher(None)
    refused = await running.run(Invocation("ask", {"question": "Anyone there?"}))
    assert error_code(refused) == "llm_unavailable"
    assert fake.requests == []


async def test_an_api_error_is_the_agents_error_without_its_text(
    fake: FakeAnthropic, llm: SdkLlm
) -> None:
    fake.fail(400, message="secret detail from upstream")
    running = await researcher(llm)
    failed = await running.run(Invocation("ask", {"question": "Hello?"}))
    assert error_code(failed) == "agent_error"
    assert "secret detail" not in failed.result.model_dump_json()
