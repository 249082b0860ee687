"""The runner core: a command's data validated, run with its context, and every outcome a
`CommandResult` with a stable code; feelings, progress, deadlines and throttling."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests.support.polling import eventually
from vsm.agent import (
    Agent,
    AgentIdentity,
    Allocation,
    Context,
    Feeling,
    Intent,
    Invocation,
    NoConfig,
    Progress,
    Refused,
    RunningAgent,
    command,
    definition,
    spawn,
)
from vsm.contract.control import AllocationChanged, Resources
from vsm.contract.operations import AgentCommand, CommandResult

SECRET = "password=hunter2"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a config's unknown key refused, by its model

    factor: int = Field(default=2, ge=1, le=10)


class Number(BaseModel):
    value: int = Field(ge=0)
    label: str = "n"


class Product(BaseModel):
    value: int


class Empty(BaseModel):
    pass


class Seen(BaseModel):
    """What a command saw of its context."""

    command_id: str
    causation_id: str | None
    trace_id: str | None
    slots: int
    agent_id: str


class Audit(BaseModel):
    multiplied: int


class Multiplier(Agent[Config]):
    """Multiplies numbers."""

    name = "multiplier"

    def __init__(self, config: Config, identity: AgentIdentity) -> None:
        super().__init__(config, identity)
        self.events: list[str] = []
        self.multiplied = 0
        self.gate = asyncio.Event()

    async def start(self) -> None:
        self.events.append("started")

    async def stop(self) -> None:
        self.events.append("stopped")

    def audit(self) -> Audit:
        return Audit(multiplied=self.multiplied)

    @command
    async def multiply(self, data: Number) -> Product:
        """Multiply by the configured factor."""
        self.multiplied += 1
        return Product(value=data.value * self.config.factor)

    @command
    async def context(self, data: Empty, ctx: Context) -> Seen:
        """Show what the context holds."""
        return Seen(
            command_id=ctx.command_id,
            causation_id=ctx.causation_id,
            trace_id=ctx.trace_id,
            slots=ctx.allocation.concurrency_slots,
            agent_id=ctx.identity.agent_id,
        )

    @command
    async def refuse(self, data: Empty) -> None:
        """Decline on purpose."""
        raise Refused("quota_exhausted", "no more today", {"retry_after_s": 60})

    @command
    async def fail(self, data: Empty) -> None:
        """Fail unexpectedly."""
        raise RuntimeError(SECRET)

    @command
    async def lie(self, data: Number) -> Product:
        """Answer what the output model does not admit."""
        return {"value": "many"}  # type: ignore[return-value]

    @command
    async def chatter(self, data: Empty) -> None:
        """Answer something though it declares no output."""
        return {"x": 1}  # type: ignore[func-returns-value]

    @command
    async def block(self, data: Empty, ctx: Context) -> None:
        """Wait until the gate opens (or the command is cancelled)."""
        ctx.progress(0, 1, "waiting")
        await self.gate.wait()

    @command
    async def steps(self, data: Number, ctx: Context) -> Product:
        """Work in steps, checking for cancellation between them."""
        for step in range(data.value):
            ctx.check()
            ctx.progress(step + 1, data.value)
            if step == 0:
                self.gate.set()
            await asyncio.sleep(0)
        return Product(value=data.value)

    @command
    async def feel(self, data: Number, ctx: Context) -> None:
        """Raise pain `value` times, and pleasure once."""
        for _ in range(data.value):
            ctx.pain("upstream_down", intensity=0.7, upstream="db")
        ctx.pleasure("backlog_cleared")
        ctx.log.info("felt", times=data.value, name="clash")

    @command
    async def stubborn(self, data: Empty) -> None:
        """Swallow every cancellation until the gate opens."""
        while not self.gate.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    @command
    async def bad_feeling(self, data: Empty, ctx: Context) -> None:
        """Raise pain with an intensity out of range."""
        ctx.pain("too_much", intensity=3.0)


def identity(agent_id: str = "mult-1") -> AgentIdentity:
    return AgentIdentity(agent_id, "multiplier")


async def started(config: dict[str, Any] | None = None) -> RunningAgent:
    return await spawn(Multiplier, config or {}, identity())


def error_of(result: CommandResult) -> tuple[str, str, dict[str, Any]]:
    assert result.status == "error"
    assert result.result is None
    assert result.error is not None
    return result.error.code, result.error.message, result.error.details


async def test_a_command_answers_its_validated_output_as_a_result() -> None:
    agent = await spawn(Multiplier, {"factor": 3}, identity())

    outcome = await agent.run(Invocation("multiply", {"value": 4}, command_id="c-1"))

    assert outcome.ok
    assert outcome.result.status == "ok"
    assert outcome.result.result == {"value": 12}
    assert outcome.result.agent_id == "mult-1"
    assert outcome.result.command_id == "c-1"
    assert outcome.result.command_type == "multiply"
    assert outcome.result.error is None
    assert outcome.exception is None


async def test_an_invocation_is_made_from_the_wire_command() -> None:
    agent = await started()
    wire = AgentCommand(agent_id="mult-1", command_type="multiply", data={"value": 5})

    outcome = await agent.run(Invocation.of(wire, causation_id="env-1", deadline_s=30))

    assert outcome.result.command_id == wire.command_id
    assert outcome.result.result == {"value": 10}


async def test_input_that_does_not_fit_is_invalid_input_naming_each_field() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("multiply", {"value": -1, "label": 7, "extra": 1}))

    code, message, details = error_of(outcome.result)
    assert code == "invalid_input"
    assert "data.value" in message
    fields = {problem["field"] for problem in details["errors"]}
    assert fields == {"data.value", "data.label"}
    assert agent.agent.multiplied == 0  # type: ignore[attr-defined]


async def test_an_answer_the_output_model_does_not_admit_is_invalid_output() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("lie", {"value": 1}))
    silent = await agent.run(Invocation("chatter", {}))

    code, _message, details = error_of(outcome.result)
    assert code == "invalid_output"
    assert details["errors"][0]["field"] == "result.value"
    assert outcome.exception is not None  # the agent's bug: counted as an error by the host
    assert error_of(silent.result)[0] == "invalid_output"


async def test_a_refusal_keeps_its_code_message_and_details() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("refuse", {}))

    assert error_of(outcome.result) == (
        "quota_exhausted",
        "no more today",
        {"retry_after_s": 60},
    )
    assert outcome.exception is None


async def test_an_unexpected_exception_is_agent_error_leaking_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = await started()

    with caplog.at_level(logging.ERROR, logger="vsm.agent.multiplier"):
        outcome = await agent.run(Invocation("fail", {}, command_id="c-9"))

    code, _message, details = error_of(outcome.result)
    assert code == "agent_error"
    assert SECRET not in outcome.result.model_dump_json()
    assert "Traceback" not in outcome.result.model_dump_json()
    assert details == {"exception": "RuntimeError"}
    assert isinstance(outcome.exception, RuntimeError)
    (record,) = caplog.records  # the host's own log keeps the trace
    assert record.exc_info is not None
    assert record.__dict__["command_id"] == "c-9"


async def test_an_unknown_command_is_not_supported_naming_the_commands() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("divide", {}))

    code, _, details = error_of(outcome.result)
    assert code == "capability_not_supported"
    assert "multiply" in details["capabilities"]


async def test_the_context_carries_ids_and_the_allocation_now() -> None:
    agent = await spawn(Multiplier, {}, identity(), Allocation(concurrency_slots=3))
    invocation = Invocation("context", {}, command_id="c-2", causation_id="e-1", trace_id="t-1")

    before = await agent.run(invocation)
    agent.allocate(
        Allocation.from_change(
            AllocationChanged(
                agent_id="mult-1",
                agent_type="multiplier",
                resources=Resources(concurrency_slots=5, llm_tokens_per_min=100),
                max_rate_per_s=2.0,
                reason="policy",
            )
        )
    )
    after = await agent.run(invocation)

    assert before.result.result == {
        "command_id": "c-2",
        "causation_id": "e-1",
        "trace_id": "t-1",
        "slots": 3,
        "agent_id": "mult-1",
    }
    assert after.result.result is not None
    assert after.result.result["slots"] == 5
    assert agent.allocation.max_rate_per_s == 2.0
    assert agent.allocation.llm_tokens_per_min == 100


async def test_feelings_are_intents_given_as_they_come_and_in_the_outcome() -> None:
    agent = await started()
    seen: list[Intent] = []

    outcome = await agent.run(Invocation("feel", {"value": 2}, command_id="c-3"), seen.append)

    assert outcome.ok
    assert list(outcome.intents) == seen
    assert [(f.kind, f.reason) for f in seen if isinstance(f, Feeling)] == [
        ("pain", "upstream_down"),
        ("pain", "upstream_down"),
        ("pleasure", "backlog_cleared"),
    ]
    signal = seen[0].signal("operations/mult-1", episode="e-7")  # type: ignore[union-attr]
    assert signal.kind == "pain"
    assert signal.intensity == 0.7
    assert signal.context == {"upstream": "db", "command_id": "c-3"}


async def test_feelings_of_one_command_are_bounded() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("feel", {"value": 100}))

    assert len(outcome.intents) == 16


async def test_a_feeling_out_of_range_is_the_agents_error() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("bad_feeling", {}))

    assert error_of(outcome.result)[0] == "agent_error"


async def test_a_command_past_its_deadline_is_cancelled_as_deadline_exceeded() -> None:
    agent = await started()

    outcome = await agent.run(Invocation("block", {}, deadline_s=0.05))

    code, _, _ = error_of(outcome.result)
    assert code == "deadline_exceeded"
    assert next(i for i in outcome.intents if isinstance(i, Progress)).message == "waiting"
    assert agent.in_flight == 0


async def wait_in_flight(agent: RunningAgent, count: int) -> None:
    async def running() -> bool:
        return agent.in_flight >= count

    await eventually(running, timeout=30, interval=0.01, what=f"{count} commands running")


async def test_throttled_away_the_running_commands_are_cancelled_and_new_ones_too() -> None:
    agent = await started()
    running = [asyncio.create_task(agent.run(Invocation("block", {}))) for _ in range(2)]
    await wait_in_flight(agent, 2)

    agent.allocate(Allocation(concurrency_slots=0))
    outcomes = await asyncio.gather(*running)
    late = await agent.run(Invocation("multiply", {"value": 1}))

    for outcome in [*outcomes, late]:
        assert error_of(outcome.result)[:2] == ("cancelled", "cancelled: throttled")
    assert agent.in_flight == 0


async def test_one_command_is_cancelled_by_its_id_and_the_others_go_on() -> None:
    agent = await started()
    doomed = asyncio.create_task(agent.run(Invocation("block", {}, command_id="c-doomed")))
    other = asyncio.create_task(agent.run(Invocation("block", {}, command_id="c-other")))
    await wait_in_flight(agent, 2)

    assert agent.cancel("c-doomed", "superseded")
    cancelled = await doomed
    agent.agent.gate.set()  # type: ignore[attr-defined]
    finished = await other

    assert error_of(cancelled.result)[2] == {"reason": "superseded"}
    assert finished.ok
    assert not agent.cancel("c-doomed", "again")


async def test_a_cooperative_command_checks_and_stops_between_steps() -> None:
    agent = await started()
    task = asyncio.create_task(agent.run(Invocation("steps", {"value": 1_000_000})))
    async with asyncio.timeout(30):
        await agent.agent.gate.wait()  # type: ignore[attr-defined]

    agent.cancel_all("draining")
    outcome = await task

    assert error_of(outcome.result)[0] == "cancelled"
    last = [i for i in outcome.intents if isinstance(i, Progress)]
    assert len(last) == 1  # only the latest progress is kept
    assert last[0].total == 1_000_000
    assert last[0].done < 1_000_000


async def test_a_bad_config_is_refused_at_spawn_naming_the_fields() -> None:
    with pytest.raises(Refused) as refused:
        await spawn(Multiplier, {"factor": 0, "other": 1}, identity())

    assert refused.value.code == "invalid_config"
    fields = {problem["field"] for problem in refused.value.details["errors"]}
    assert fields == {"config.factor", "config.other"}


async def test_an_agent_of_another_type_cannot_be_spawned_from_this_class() -> None:
    with pytest.raises(ValueError, match="cannot be 'adder'"):
        await spawn(Multiplier, {}, AgentIdentity("m-2", "adder"))


class Fragile(Agent):  # type: ignore[type-arg]
    """Cannot start."""

    name = "fragile"

    async def start(self) -> None:
        raise OSError(SECRET)

    def audit(self) -> dict[str, Any]:
        raise KeyError(SECRET)

    @command
    async def go(self, data: Empty) -> None:
        """Go."""


async def test_a_start_hook_that_fails_refuses_the_spawn_leaking_nothing() -> None:
    with pytest.raises(Refused) as refused:
        await spawn(Fragile, {}, AgentIdentity("f-1", "fragile"))

    assert refused.value.code == "agent_start_failed"
    assert SECRET not in str(refused.value)


class Unbuildable(Fragile):
    """Cannot even be made."""

    name = "unbuildable"

    def __init__(self, config: NoConfig, identity: AgentIdentity) -> None:
        raise ValueError(SECRET)


async def test_an_agent_that_cannot_be_made_refuses_the_spawn_leaking_nothing() -> None:
    with pytest.raises(Refused) as refused:
        await spawn(Unbuildable, {}, AgentIdentity("u-1", "unbuildable"))

    assert refused.value.code == "agent_start_failed"
    assert SECRET not in str(refused.value)


async def test_the_audit_view_is_json_data_and_a_failing_one_is_reported() -> None:
    agent = await started()
    await agent.run(Invocation("multiply", {"value": 1}))
    fragile = RunningAgent(
        definition(Fragile),
        Fragile(NoConfig(), AgentIdentity("f-2", "fragile")),
        Allocation(),
    )

    assert agent.audit() == {"multiplied": 1}
    assert fragile.audit() == {"audit_error": "KeyError"}


async def test_stopping_runs_the_hook_once_and_later_commands_find_it_terminated() -> None:
    agent = await started()

    await agent.stop()
    await agent.stop()
    outcome = await agent.run(Invocation("multiply", {"value": 1}))

    assert agent.agent.events == ["started", "stopped"]  # type: ignore[attr-defined]
    assert error_of(outcome.result)[0] == "agent_terminated"


async def test_logs_are_bound_to_the_agent_and_the_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = await started()

    with caplog.at_level(logging.INFO, logger="vsm.agent.multiplier"):
        await agent.run(Invocation("feel", {"value": 0}, command_id="c-4", trace_id="t-4"))

    (record,) = [r for r in caplog.records if r.getMessage() == "felt"]
    fields = record.__dict__
    assert fields["agent_id"] == "mult-1"
    assert fields["agent_type"] == "multiplier"
    assert fields["command"] == "feel"
    assert fields["command_id"] == "c-4"
    assert fields["trace_id"] == "t-4"
    assert fields["times"] == 0
    assert fields["name_"] == "clash"  # a record attribute's name is not overwritten
    assert record.name == "vsm.agent.multiplier"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Careless(Agent):  # type: ignore[type-arg]
    """Hands out what cannot travel."""

    name = "careless"

    async def start(self) -> None:
        self.log.info("starting", phase="start")
        self.when = datetime(2026, 1, 2, tzinfo=UTC)

    def audit(self) -> dict[str, Any]:
        return {"when": self.when, "handle": object() if self.broken else None}

    broken = False

    @command
    async def strict(self, data: Strict) -> None:
        """Take nothing."""

    @command
    async def refuse_oddly(self, data: Empty) -> None:
        """Refuse with details that are not JSON."""
        raise Refused("odd", "odd details", {"handle": object()})

    @command
    async def refuse_badly(self, data: Empty) -> None:
        """Refuse with a code no error may carry."""
        raise Refused("c" * 65, "too long a code")

    @command
    async def feel_oddly(self, data: Empty, ctx: Context) -> None:
        """Feel with a context that is not JSON."""
        ctx.pain("odd", handle=object())


async def careless() -> RunningAgent:
    return await spawn(Careless, {}, AgentIdentity("care-1", "careless"))


async def test_a_huge_unknown_key_is_named_within_the_bounds_of_an_error() -> None:
    agent = await careless()

    outcome = await agent.run(Invocation("strict", {"k" * 100_000: 1}))

    code, message, details = error_of(outcome.result)
    assert code == "invalid_input"
    assert len(message) <= 4096
    assert len(details["errors"][0]["field"]) == 256


@pytest.mark.parametrize("command_name", ["refuse_oddly", "refuse_badly", "feel_oddly"])
async def test_a_refusal_or_feeling_that_cannot_travel_is_the_agents_error(
    command_name: str,
) -> None:
    agent = await careless()

    outcome = await agent.run(Invocation(command_name, {}))

    assert error_of(outcome.result)[0] == "agent_error"
    assert outcome.intents == ()


async def test_the_audit_view_is_made_json_and_what_cannot_be_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="vsm.agent.careless"):
        agent = await careless()

    assert agent.audit() == {"when": "2026-01-02T00:00:00Z", "handle": None}
    agent.agent.broken = True  # type: ignore[attr-defined]
    assert agent.audit() == {"audit_error": "PydanticSerializationError"}
    (record,) = [r for r in caplog.records if r.getMessage() == "starting"]
    assert record.__dict__["agent_id"] == "care-1"
    assert record.__dict__["phase"] == "start"


async def test_the_host_cancelling_a_run_cancels_the_command_and_lets_it_go() -> None:
    agent = await started()
    running = asyncio.create_task(agent.run(Invocation("block", {})))
    await wait_in_flight(agent, 1)

    running.cancel()

    with pytest.raises(asyncio.CancelledError):
        await running
    assert agent.in_flight == 0


async def test_a_command_that_swallows_its_cancellation_cannot_hold_the_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = await started()
    agent.cancel_grace_s = 0.05

    with caplog.at_level(logging.WARNING, logger="vsm.agent.multiplier"):
        outcome = await agent.run(Invocation("stubborn", {}, deadline_s=0.05))
    agent.agent.gate.set()  # type: ignore[attr-defined]  # let it end

    assert error_of(outcome.result)[0] == "deadline_exceeded"
    assert any("ignores its cancellation" in r.getMessage() for r in caplog.records)


class Prompt(BaseModel):
    text: str


class Reply(BaseModel):
    text: str


class Writer(Agent[NoConfig]):
    """Asks the host's LLM client, when it lends one."""

    name = "writer"

    @command
    async def write(self, prompt: Prompt, ctx: Context) -> Reply:
        """Answer the prompt."""
        if ctx.llm is None:
            raise Refused("llm_unavailable", "this host has no LLM configured")
        answer = await ctx.llm.create(model="m", max_tokens=16, messages=[prompt.text])
        return Reply(text=str(answer))


class Lender:
    """An LLM client as a host lends it: `create` with the Messages API's arguments."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def create(self, **request: Any) -> Any:
        self.requests.append(request)
        return f"re: {request['messages'][0]}"


async def test_a_command_calls_the_llm_client_its_host_lends_it() -> None:
    lender = Lender()
    identity = AgentIdentity("writer-1", "writer")
    running = await spawn(Writer, {}, identity, llm=lender)
    outcome = await running.run(Invocation("write", {"text": "hello"}))
    assert outcome.result.result == {"text": "re: hello"}
    assert lender.requests == [{"model": "m", "max_tokens": 16, "messages": ["hello"]}]

    alone = await spawn(Writer, {}, identity)
    refused = await alone.run(Invocation("write", {"text": "hello"}))
    assert refused.result.error is not None
    assert refused.result.error.code == "llm_unavailable"
