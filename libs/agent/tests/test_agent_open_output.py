"""A command may answer any JSON object (`JsonObject`): no output schema, only a JSON object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from vsm.agent import (
    Agent,
    AgentIdentity,
    Invocation,
    JsonObject,
    NoConfig,
    command,
    describe,
    spawn,
)


class Anything(BaseModel):
    value: Any = None


class Echo(Agent[NoConfig]):
    """Answers whatever it is asked to."""

    name = "echo"

    @command
    async def echo(self, data: Anything) -> JsonObject:
        """Answer `value` as the whole result."""
        return data.value  # type: ignore[no-any-return]


def test_an_open_answer_has_no_output_schema() -> None:
    assert describe(Echo).commands["echo"].output_schema is None


async def test_any_json_object_is_answered_as_it_is() -> None:
    agent = await spawn(Echo, {}, AgentIdentity("echo-1", "echo"))

    done = await agent.run(Invocation("echo", {"value": {"a": [1, "b", None]}}))

    assert done.result.result == {"a": [1, "b", None]}


async def test_an_answer_that_is_no_json_object_is_the_agents_fault() -> None:
    agent = await spawn(Echo, {}, AgentIdentity("echo-1", "echo"))

    for wrong in ([1, 2], "text", None):
        done = await agent.run(Invocation("echo", {"value": wrong}))

        assert done.result.error is not None
        assert done.result.error.code == "invalid_output"
        assert done.exception is not None
