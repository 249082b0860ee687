"""An agent's command loop: allocation-bounded concurrency, capabilities, duplicates, crashes,
for an agent of an SDK type run as operations runs every type."""

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests.support.hosted import Hosted, hosted
from vsm.agent import Agent, AgentIdentity, Context, JsonObject, command
from vsm.contract.control import AllocationChanged, Resources
from vsm.contract.operations import AgentCommand
from vsm.operations.agents.base import AgentConfig


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Counted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1)


class Echoed(BaseModel):
    echo: dict[str, Any]


class Slow(Agent[AgentConfig]):
    """Echoes what it is given, slowly, counting how many echo at once; fails, or answers
    what it did not promise, when asked."""

    name = "slow"

    def __init__(self, config: AgentConfig, identity: AgentIdentity) -> None:
        super().__init__(config, identity)
        self.running = 0
        self.peak = 0
        self.calls = 0

    async def _echo(self, request: Anything) -> dict[str, Any]:
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.02)
        self.running -= 1
        return request.model_dump()

    @command
    async def process_data(self, request: Anything) -> Echoed:
        """Echo."""
        return Echoed(echo=await self._echo(request))

    @command
    async def transform(self, request: Anything) -> JsonObject:
        """Echo, the answer's shape left open."""
        return JsonObject({"echo": await self._echo(request)})

    @command
    async def analyze(self, request: Anything) -> Echoed:
        """Fail (a bug)."""
        raise RuntimeError("bug")

    @command
    async def chat(self, request: Counted) -> Echoed:
        """Count, and answer what `Echoed` does not admit (a bug)."""
        self.calls += 1
        return {"echo": "not a count"}  # type: ignore[return-value]

    @command
    async def allocation(self, request: Anything, ctx: Context) -> Echoed:
        """The slots S3 allocates the agent, as its commands see them."""
        return Echoed(echo={"slots": ctx.allocation.concurrency_slots})


async def make(
    allocation: int = 2, *, built_in: bool = True, unlisted: tuple[str, ...] = ()
) -> Hosted:
    return await hosted(Slow, {"allocation": allocation}, built_in=built_in, unlisted=unlisted)


def slow(made: Hosted) -> Slow:
    agent = made.running
    assert isinstance(agent, Slow)
    return agent


async def test_commands_beyond_the_allocation_wait_and_all_succeed() -> None:
    made = await make(allocation=3)
    commands = [AgentCommand(command_type="process_data", data={"i": i}) for i in range(20)]
    results = await asyncio.gather(*(made.agent.run(c) for c in commands))
    assert [r.status for r in results] == ["ok"] * 20
    assert [r.result for r in results] == [{"echo": {"i": i}} for i in range(20)]
    assert slow(made).peak == 3


async def test_an_unsupported_command_is_an_error_result() -> None:
    made = await make(unlisted=("chat",))
    for unsupported in ("chat", "dance"):  # declared but not the agent's capability; unknown
        result = await made.agent.run(AgentCommand(command_type=unsupported))
        assert result.status == "error"
        assert result.error is not None
        assert result.error.code == "capability_not_supported"


async def test_a_duplicate_command_id_is_answered_without_doing_it_again() -> None:
    made = await make()
    command = AgentCommand(command_id="same", command_type="transform")
    first = await made.agent.run(command)
    second = await made.agent.run(command)
    assert first == second
    assert slow(made).calls == 1
    assert made.agent.repeats == 1


async def test_an_unexpected_failure_is_reported_as_a_crash_and_the_agent_goes_on() -> None:
    made = await make()
    for _ in range(5):
        result = await made.agent.run(AgentCommand(command_type="analyze"))
        assert result.error is not None
        assert result.error.code == "agent_error"
        assert "bug" not in result.error.message  # the exception's class only leaves
    assert [type(c) for c in made.crashes] == [RuntimeError] * 5
    assert [f.kind for f in made.felt] == ["pain"]
    assert (await made.agent.run(AgentCommand(command_type="process_data"))).status == "ok"


async def test_audits_show_resources_metrics_and_state() -> None:
    made = await make(allocation=2)
    agent = made.agent
    await agent.run(AgentCommand(command_type="process_data"))
    assert agent.audit("resource_audit")["allocation"] == 2
    assert agent.audit("metrics_only")["succeeded"] == 1
    assert agent.audit("state_dump")["agent"]["agent_id"] == agent.info.agent_id


async def test_s3s_allocation_is_the_agents_slots_and_what_its_commands_see() -> None:
    made = await make(allocation=2)
    await made.agent.allocate(
        AllocationChanged(
            agent_id=made.agent.info.agent_id,
            agent_type="slow",
            resources=Resources(concurrency_slots=5),
            reason="more work",
        )
    )
    result = await made.agent.run(AgentCommand(command_type="allocation"))
    assert made.agent.slots.capacity == 5
    assert result.result == {"echo": {"slots": 5}}


@pytest.mark.parametrize(
    ("built_in", "code"), [(True, "invalid_command"), (False, "invalid_input")]
)
async def test_input_that_does_not_fit_the_command_is_refused_naming_each_field(
    built_in: bool, code: str
) -> None:
    made = await make(built_in=built_in)
    data = {"count": 0, "extra": 1}
    result = await made.agent.run(AgentCommand(command_type="chat", data=data))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.code == code
    fields = {e["field"]: e["message"] for e in result.error.details["errors"]}
    assert set(fields) == {"data.count", "data.extra"}
    assert "greater than or equal to 1" in fields["data.count"]
    assert "data.count: " in result.error.message
    assert (slow(made).calls, made.crashes) == (0, [])


async def test_an_answer_outside_the_declared_output_is_the_agents_fault() -> None:
    made = await make()
    result = await made.agent.run(AgentCommand(command_type="chat", data={"count": 2}))
    assert result.error is not None
    assert result.error.code == "invalid_output"
    assert [e["field"] for e in result.error.details["errors"]] == ["result.echo"]
    assert len(made.crashes) == 1


class Broken:
    """A stand-in for the SDK's runner that fails itself: a fault of the host's machinery, not
    of the agent's command."""

    async def run(self, *_: Any) -> Any:
        raise RuntimeError("password=hunter2")


async def test_a_fault_of_the_hosts_own_machinery_names_its_class_and_nothing_more() -> None:
    made = await make()
    made.agent.behaviour.running = Broken()  # type: ignore[assignment]

    result = await made.agent.run(AgentCommand(command_type="process_data"))

    assert result.error is not None
    assert result.error.code == "agent_error"
    assert "RuntimeError" in result.error.message
    assert "hunter2" not in result.model_dump_json()
    assert [type(e) for e in made.crashes] == [RuntimeError]
