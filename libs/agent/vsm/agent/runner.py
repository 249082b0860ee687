"""The runner core every host uses: spawn an agent of a type, run its commands, stop it.

Transport-free: a host turns what arrives (`AgentCommand` in its envelope) into an
`Invocation`, and publishes what comes back: the `Outcome`'s `CommandResult` as it is, and
its intents (feelings as algedonic signals, progress). Validation, the deadline, the
cancellation when S3 throttles the agent away and the error codes (`vsm.agent.failures`)
are decided here, once, for every host.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from vsm.agent import failures
from vsm.agent.context import (
    AgentIdentity,
    Allocation,
    Cancellation,
    CommandCancelled,
    Context,
    Intent,
    Llm,
    agent_log,
)
from vsm.agent.definition import Agent, AgentTypeDefinition, CommandDefinition, definition
from vsm.contract.errors import Refused
from vsm.contract.operations import AgentCommand, CommandError, CommandResult

__all__ = ["CANCEL_GRACE_S", "InvalidOutput", "Invocation", "Outcome", "RunningAgent", "spawn"]

CANCEL_GRACE_S = 5.0
"""How long a cancelled command is waited for before its answer (`cancelled`) is given
anyway: a command that swallows its cancellation cannot hold the host."""


@dataclass(frozen=True)
class Invocation:
    """One command to run: its name and data, and what the host knows of it."""

    command: str
    data: Mapping[str, Any] = field(default_factory=dict)
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None
    trace_id: str | None = None
    deadline_s: float | None = None
    """Seconds it may take from now (None: no deadline)."""

    @classmethod
    def of(
        cls,
        command: AgentCommand,
        *,
        causation_id: str | None = None,
        trace_id: str | None = None,
        deadline_s: float | None = None,
    ) -> Invocation:
        """The invocation an `AgentCommand` from the wire asks for."""
        return cls(
            command.command_type,
            command.data,
            command.command_id,
            causation_id=causation_id,
            trace_id=trace_id,
            deadline_s=deadline_s,
        )


@dataclass(frozen=True)
class Outcome:
    """What a command came to: the result to publish, the intents it raised, and (for the
    host's own log and pain count only, never sent) the exception behind an `agent_error`."""

    result: CommandResult
    intents: tuple[Intent, ...] = ()
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"


class InvalidOutput(Exception):
    def __init__(self, error: CommandError) -> None:
        super().__init__(error.message)
        self.error = error


async def spawn(
    agent_type: type[Agent[Any]],
    config: Mapping[str, Any] | BaseModel,
    identity: AgentIdentity,
    allocation: Allocation | None = None,
    llm: Llm | None = None,
    *,
    on_intent: Callable[[Intent], None] | None = None,
    prepare: Callable[[Agent[Any]], None] | None = None,
) -> RunningAgent:
    """A started agent: its config validated (`Refused("invalid_config")` naming the fields)
    and its `start` hook done (`Refused("agent_start_failed")` when it raises). `llm` is the
    client its commands see as `ctx.llm`; `on_intent` hears the feelings it raises outside
    commands (`Agent.pain`, from its `start` hook on); `prepare` sees the agent made, before
    its `start` hook (where a host hands its own agents what it lends them)."""
    read = definition(agent_type)
    if identity.agent_type != read.name:
        raise ValueError(f"an agent of type {read.name!r} cannot be {identity.agent_type!r}")
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    try:
        validated = read.config_model.model_validate(data)
    except ValidationError as error:
        problem = failures.invalid(error, "invalid_config", "config")
        raise Refused(problem.code, problem.message, problem.details) from None
    try:
        agent = read.agent_class(validated, identity)
        agent._heard = on_intent
        if prepare is not None:
            prepare(agent)
        await agent.start()
    except Exception as error:
        agent_log(identity).exception("the agent failed to start")
        raise Refused(
            "agent_start_failed", f"{read.name} failed to start ({type(error).__name__})"
        ) from None
    return RunningAgent(read, agent, allocation or Allocation(), llm)


class RunningAgent:
    """One live agent: runs its commands, takes S3's allocations, answers audits, stops."""

    def __init__(
        self,
        read: AgentTypeDefinition,
        agent: Agent[Any],
        allocation: Allocation,
        llm: Llm | None = None,
    ):
        self.definition = read
        self.llm = llm
        self.agent = agent
        self.identity = agent.identity
        self.allocation = allocation
        self.stopped = False
        self.log = agent.log
        self.cancel_grace_s = CANCEL_GRACE_S
        self._running: dict[int, Context] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def allocate(self, allocation: Allocation) -> None:
        """Take S3's allocation; with no slot left, the running commands are cancelled."""
        self.allocation = allocation
        if allocation.throttled_away:
            self.cancel_all("throttled")

    def cancel(self, command_id: str, reason: str) -> bool:
        """Cancel the running command(s) with this id; whether there was one."""
        found = [c for c in self._running.values() if c.command_id == command_id]
        for context in found:
            context.cancellation.cancel(reason)
        return bool(found)

    def cancel_all(self, reason: str) -> int:
        contexts = list(self._running.values())
        for context in contexts:
            context.cancellation.cancel(reason)
        return len(contexts)

    def audit(self) -> dict[str, Any]:
        """The agent's own audit view as JSON data (a failing view is reported, not raised)."""
        try:
            view = self.agent.audit()
            data = view.model_dump(mode="json") if isinstance(view, BaseModel) else dict(view)
            return dict(to_jsonable_python(data))
        except Exception as error:
            self.log.exception("the agent's audit view failed")
            return {"audit_error": type(error).__name__}

    async def stop(self) -> None:
        """No more commands (they get `agent_terminated`); the `stop` hook runs once."""
        if self.stopped:
            return
        self.stopped = True
        try:
            await self.agent.stop()
        except Exception:
            self.log.exception("the agent failed to stop cleanly")

    async def run(
        self, invocation: Invocation, on_intent: Callable[[Intent], None] | None = None
    ) -> Outcome:
        """Run one command to its `CommandResult`; `on_intent` sees each intent as it comes."""
        started = time.monotonic()
        declared = self.definition.commands.get(invocation.command)
        context: Context | None = None
        exception: BaseException | None = None
        if self.stopped:
            answer: dict[str, Any] | CommandError = failures.terminated()
        elif declared is None:
            answer = failures.not_supported(
                self.definition.name, invocation.command, sorted(self.definition.commands)
            )
        else:
            context = self._context(invocation, declared, on_intent)
            answer, exception = await self._perform(declared, invocation, context)
        return Outcome(
            self._result(invocation, answer, time.monotonic() - started),
            tuple(context.intents) if context else (),
            exception,
        )

    def _context(
        self,
        invocation: Invocation,
        declared: CommandDefinition,
        on_intent: Callable[[Intent], None] | None,
    ) -> Context:
        deadline = invocation.deadline_s
        return Context(
            self.identity,
            declared.name,
            invocation.command_id,
            allocation=lambda: self.allocation,
            cancellation=Cancellation(None if deadline is None else time.monotonic() + deadline),
            log=self.log.bind(
                command=declared.name,
                command_id=invocation.command_id,
                trace_id=invocation.trace_id,
            ),
            causation_id=invocation.causation_id,
            trace_id=invocation.trace_id,
            on_intent=on_intent,
            llm=self.llm,
        )

    async def _perform(
        self, declared: CommandDefinition, invocation: Invocation, context: Context
    ) -> tuple[dict[str, Any] | CommandError, BaseException | None]:
        try:
            data = declared.input_model.model_validate(dict(invocation.data))
        except ValidationError as error:
            return failures.invalid(error, "invalid_input", "data"), None
        key = id(context)
        self._running[key] = context
        try:
            if self.allocation.throttled_away:
                context.cancellation.cancel("throttled")
            answer = await self._within_cancellation(declared, data, context)
            return _checked(declared, answer), None
        except CommandCancelled as stopped:
            return failures.cancelled(stopped.reason), None
        except InvalidOutput as invalid:
            return invalid.error, invalid
        except Refused as refused:
            return failures.refusal(refused), None
        except Exception as error:
            context.log.exception("the command failed in the agent")
            return failures.agent_error(error), error
        finally:
            del self._running[key]

    async def _within_cancellation(
        self, declared: CommandDefinition, data: BaseModel, context: Context
    ) -> Any:
        """The command's answer, unless its cancellation fires first: then the command is
        cancelled (a `CancelledError` at its next await) and `CommandCancelled` raised."""
        arguments: dict[str, Any] = {declared.input_parameter: data}
        if declared.context_parameter is not None:
            arguments[declared.context_parameter] = context
        if context.cancellation.cancelled:
            raise CommandCancelled(context.cancellation.reason or "cancelled")
        cancellation = context.cancellation
        work = asyncio.ensure_future(getattr(self.agent, declared.method)(**arguments))
        fired = cancellation.fired()  # a future, not a task: one task per command
        try:
            await asyncio.wait(
                {work, fired},
                timeout=cancellation.remaining_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not work.done() and not fired.done():  # the deadline came first
                cancellation.cancel("deadline")
        finally:
            fired.cancel()
            if not work.done():
                work.cancel()
                await asyncio.wait({work}, timeout=self.cancel_grace_s)
                if not work.done():
                    context.log.warning("the command ignores its cancellation; left to run")
        if cancellation.cancelled:
            raise CommandCancelled(cancellation.reason or "cancelled")
        if work.cancelled():  # something inside the agent cancelled it, not the host
            raise RuntimeError("the command was cancelled from inside the agent")
        return work.result()

    def _result(
        self, invocation: Invocation, answer: dict[str, Any] | CommandError, elapsed: float
    ) -> CommandResult:
        failed = isinstance(answer, CommandError)
        return CommandResult(
            agent_id=self.identity.agent_id,
            command_id=invocation.command_id,
            command_type=invocation.command[:64],
            status="error" if failed else "ok",
            result=None if failed else answer,
            error=answer if failed else None,
            processing_time_ms=round(elapsed * 1000, 3),
        )


def _checked(declared: CommandDefinition, answer: Any) -> dict[str, Any]:
    """The answer as JSON data, checked against the declared output model."""
    model = declared.output_model
    if declared.open_output:
        if not isinstance(answer, dict):
            raise InvalidOutput(_wrong_output(f"{declared.name} must answer a JSON object"))
        return _json_object(declared, answer)
    if model is None:
        if answer is not None:
            raise InvalidOutput(_wrong_output(f"{declared.name} declares no output"))
        return {}
    data = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
    if not isinstance(data, dict):
        raise InvalidOutput(_wrong_output(f"{declared.name} must answer a {model.__name__}"))
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as error:
        raise InvalidOutput(failures.invalid(error, "invalid_output", "result")) from None


def _json_object(declared: CommandDefinition, answer: dict[str, Any]) -> dict[str, Any]:
    """An open answer as JSON data (`JsonObject`): text keys, JSON values."""
    if not all(isinstance(key, str) for key in answer):
        raise InvalidOutput(_wrong_output(f"{declared.name} answered keys that are not text"))
    try:
        return dict(to_jsonable_python(answer))
    except PydanticSerializationError:
        raise InvalidOutput(_wrong_output(f"{declared.name} answered no JSON data")) from None


def _wrong_output(message: str) -> CommandError:
    return CommandError(code="invalid_output", message=message)
