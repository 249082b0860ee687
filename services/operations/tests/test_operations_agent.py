"""An agent's command loop: allocation-bounded concurrency, capabilities, duplicates, crashes."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.operations import AgentCommand
from vsm.operations.agent import Agent
from vsm.operations.agents.base import AgentConfig, Command, Commands, Passive
from vsm.operations.algedonics import Feeling
from vsm.operations.registry import new_agent


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Slow(Passive):
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.calls = 0

    async def echo(self, request: Anything) -> dict[str, Any]:
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.02)
        self.running -= 1
        return {"echo": request.model_dump()}

    async def broken(self, request: Anything) -> dict[str, Any]:
        raise RuntimeError("bug")

    async def promise_breaker(self, request: Anything) -> dict[str, Any]:
        return {"echo": "not a count"}


class Counted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1)


class Echoed(BaseModel):
    echo: dict[str, Any]


COMMANDS: Commands = {
    "process_data": Command("echo", Anything, Slow.echo, Echoed),
    "transform": Command("echo", Anything, Slow.echo),
    "analyze": Command("fails", Anything, Slow.broken),
    "chat": Command("counts", Counted, Slow.promise_breaker, Echoed),
}
"""Declared here; `chat` is not a worker's capability in the registry."""


def make(allocation: int = 2) -> tuple[Agent, Slow, list[Feeling], list[BaseException]]:
    info = new_agent("worker", {"allocation": allocation}, datetime.now(UTC))
    behaviour = Slow()
    felt: list[Feeling] = []
    crashes: list[BaseException] = []

    async def feel(feeling: Feeling) -> None:
        felt.append(feeling)

    async def crash(error: BaseException) -> None:
        crashes.append(error)

    agent = Agent(
        info,
        AgentConfig(allocation=allocation),
        behaviour,
        commands=COMMANDS,
        window_s=10,
        feel=feel,
        crash=crash,
    )
    return agent, behaviour, felt, crashes


async def test_commands_beyond_the_allocation_wait_and_all_succeed() -> None:
    agent, behaviour, _, _ = make(allocation=3)
    commands = [AgentCommand(command_type="process_data", data={"i": i}) for i in range(20)]
    results = await asyncio.gather(*(agent.run(c) for c in commands))
    assert [r.status for r in results] == ["ok"] * 20
    assert behaviour.peak == 3


async def test_an_unsupported_command_is_an_error_result() -> None:
    agent, _, _, _ = make()
    result = await agent.run(AgentCommand(command_type="chat"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.code == "capability_not_supported"


async def test_a_duplicate_command_id_is_answered_without_doing_it_again() -> None:
    agent, behaviour, _, _ = make()
    command = AgentCommand(command_id="same", command_type="transform")
    first = await agent.run(command)
    second = await agent.run(command)
    assert first == second
    assert behaviour.calls == 1


async def test_an_unexpected_failure_is_reported_as_a_crash_and_the_agent_goes_on() -> None:
    agent, _, felt, crashes = make()
    for _ in range(5):
        result = await agent.run(AgentCommand(command_type="analyze"))
        assert result.error is not None
        assert result.error.code == "agent_error"
    assert len(crashes) == 5
    assert [f.kind for f in felt] == ["pain"]
    assert (await agent.run(AgentCommand(command_type="process_data"))).status == "ok"


async def test_audits_show_resources_metrics_and_state() -> None:
    agent, _, _, _ = make(allocation=2)
    await agent.run(AgentCommand(command_type="process_data"))
    assert agent.audit("resource_audit")["allocation"] == 2
    assert agent.audit("metrics_only")["succeeded"] == 1
    assert agent.audit("state_dump")["agent"]["agent_id"] == agent.info.agent_id


async def test_input_that_does_not_fit_the_command_is_refused_naming_each_field() -> None:
    agent, behaviour, _, crashes = make()
    agent.info = agent.info.model_copy(update={"capabilities": [*agent.info.capabilities, "chat"]})
    result = await agent.run(AgentCommand(command_type="chat", data={"count": 0, "extra": 1}))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.code == "invalid_command"
    fields = {e["field"]: e["message"] for e in result.error.details["errors"]}
    assert set(fields) == {"data.count", "data.extra"}
    assert "greater than or equal to 1" in fields["data.count"]
    assert "data.count: " in result.error.message
    assert (behaviour.calls, crashes) == (0, [])


async def test_an_answer_outside_the_declared_output_is_the_agents_fault() -> None:
    agent, _, _, crashes = make()
    agent.info = agent.info.model_copy(update={"capabilities": [*agent.info.capabilities, "chat"]})
    result = await agent.run(AgentCommand(command_type="chat", data={"count": 2}))
    assert result.error is not None
    assert result.error.code == "agent_error"
    assert "Echoed" in result.error.message
    assert len(crashes) == 1
