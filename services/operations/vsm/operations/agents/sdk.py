"""An agent type written on the SDK (`vsm.agent`), made a type the host runs: the only way
agents run in operations, operations' own types and those of hosts and packages alike.

The host's `Agent` keeps what governance needs (slots and rate from S3's allocation, the
algedonic monitor, the performance meter, the results of the last commands); the SDK's
`RunningAgent` runs the command itself (validation, context, deadline, cancellation, error
codes). Its error results keep their codes; an `agent_error` or `invalid_output` is the
agent's own fault, reported as a crash (its exception stays in the host's log) and counted
toward its pain like any failure. The config keys the host reads (`allocation`,
`max_allocation`, `algedonic`) are taken out before the type's own config is validated.

operations' own types are SDK types too, hosted with `built_in=True`: their config models
are `AgentConfig`s (the governance keys are their own fields, validated with the rest at
spawn, as they always were), and data that does not fit a command answers
`invalid_command`, the code clients of earlier releases know (SDK types answer
`invalid_input`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from vsm.agent import (
    Agent,
    AgentIdentity,
    Allocation,
    Feeling,
    Intent,
    Invocation,
    Progress,
    Refused,
    RunningAgent,
    definition,
    spawn,
)
from vsm.agent.definition import AgentTypeDefinition, CommandDefinition
from vsm.contract.control import AllocationChanged
from vsm.contract.operations import CommandInfo
from vsm.operations.agent import current_command
from vsm.operations.agents.base import (
    AgentConfig,
    AgentType,
    CommandFailed,
    Crash,
    Feel,
    Resources,
    nowhere,
)
from vsm.operations.algedonics import Feeling as Felt

__all__ = ["Borrower", "HostedConfig", "SdkBehaviour", "SdkCommand", "hosted_type"]


@runtime_checkable
class Borrower(Protocol):
    """A built-in type that uses the host's own clients (the egress client, the LLM retry
    deadline): given them once made, before its `start` hook, with `crash` to report a
    failure of its own work outside commands (a sensor's source)."""

    def borrow(self, resources: Resources, crash: Crash | None = None) -> None: ...


class HostedConfig(AgentConfig):
    """What the host reads of an SDK agent's config: its allocation and algedonic limits;
    the rest is the type's own config, validated by the SDK when the agent starts."""

    model_config = ConfigDict(extra="allow", frozen=True)


class SdkBehaviour:
    """One SDK agent between commands: started (its config validated, its `start` hook run),
    stopped, shown to an auditor."""

    def __init__(
        self,
        read: AgentTypeDefinition,
        config: dict[str, Any],
        resources: Resources,
        *,
        lends: bool = False,
    ) -> None:
        if resources.agent is None:
            raise ValueError("an SDK agent is built for one agent (Resources.charged_to)")
        self.read = read
        self.info = resources.agent
        self.config = config
        """The type's own config, as its config model reads it."""
        self.lends = lends
        """Whether the agent is given the host's clients (`Borrower`): built-ins only."""
        self.resources = resources
        self.running: RunningAgent | None = None
        self.broken: Refused | None = None
        """Why the agent could not start (its config, its `start` hook): every command
        answers this."""
        self.feel: Feel | None = None
        self.crash: Crash | None = None
        self._felt: set[asyncio.Future[None]] = set()

    async def start(self, feel: Feel, crash: Crash) -> None:
        self.feel, self.crash = feel, crash
        info = self.info
        identity = AgentIdentity(info.agent_id, info.agent_type, info.name, info.vsm_id)
        allocation = Allocation(concurrency_slots=info.allocation)
        try:
            self.running = await spawn(
                self.read.agent_class,
                self.config,
                identity,
                allocation,
                self.resources.llm,
                on_intent=self.intent,
                prepare=self._lend,
            )
        except Refused as refused:
            self.broken = refused
            await crash(refused)

    def _lend(self, agent: Agent[Any]) -> None:
        if self.lends and isinstance(agent, Borrower):
            agent.borrow(self.resources, self.crash)

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
        for task in list(self._felt):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def state(self) -> dict[str, Any]:
        if self.running is None:
            return {"start_error": None if self.broken is None else self.broken.code}
        return self.running.audit()

    def allocate(self, change: AllocationChanged) -> None:
        """S3's allocation, as the agent's commands see it (`ctx.allocation`)."""
        if self.running is not None:
            self.running.allocate(Allocation.from_change(change))

    def intent(self, intent: Intent) -> None:
        """A feeling the agent raised (in a command or outside) goes to S5 as an algedonic
        signal; progress is dropped."""
        if isinstance(intent, Progress):
            return
        if isinstance(intent, Feeling) and self.feel is not None:
            felt = Felt(
                kind=intent.kind,
                intensity=intent.intensity,
                reason=intent.reason,
                episode=intent.episode or f"{self.info.agent_id}:{intent.reason}",
                context={k: v for k, v in intent.context.items() if isinstance(v, int | float)},
            )
            task = asyncio.ensure_future(self.feel(felt))
            self._felt.add(task)
            task.add_done_callback(self._felt.discard)


class SdkCommand:
    """One command of an SDK type, as the host's `Agent` performs commands."""

    def __init__(
        self, declared: CommandDefinition, info: CommandInfo, invalid_code: str = "invalid_input"
    ) -> None:
        self.declared = declared
        self.description = info.description
        self._info = info
        self.invalid_code = invalid_code
        """The code of data that does not fit the command (`invalid_command`: built-ins)."""

    def info(self) -> CommandInfo:
        return self._info

    async def perform(self, behaviour: SdkBehaviour, data: dict[str, Any]) -> dict[str, Any]:
        if behaviour.broken is not None:
            refused = behaviour.broken
            raise CommandFailed(refused.code, refused.message, refused.details)
        if behaviour.running is None:
            raise CommandFailed("agent_not_started", "the agent has not started")
        invocation = Invocation(
            self.declared.name, data, current_command.get() or str(uuid.uuid4())
        )
        outcome = await behaviour.running.run(invocation, behaviour.intent)
        if outcome.exception is not None and behaviour.crash is not None:
            await behaviour.crash(outcome.exception)
        error = outcome.result.error
        if error is not None:
            code = self.invalid_code if error.code == "invalid_input" else error.code
            raise CommandFailed(code, error.message, error.details)
        return outcome.result.result or {}


def hosted_type(
    agent_class: type[Agent[Any]],
    *,
    built_in: bool = False,
    destinations: Callable[[Any], list[tuple[str, str]]] = nowhere,
) -> AgentType:
    """The SDK type `agent_class`, as the host runs agent types; `built_in` for operations'
    own types (config and codes as earlier releases had them: see the module's docstring),
    `destinations` the URLs a config would call, checked against the egress policy at spawn."""
    read = definition(agent_class)
    manifest = read.manifest()
    config_model: type[AgentConfig] = HostedConfig
    if built_in:
        if not issubclass(read.config_model, AgentConfig):
            raise TypeError(f"a built-in type's config is an AgentConfig: {read.name}")
        config_model = read.config_model
    invalid_code = "invalid_command" if built_in else "invalid_input"
    commands = {
        name: SdkCommand(declared, manifest.commands[name], invalid_code)
        for name, declared in read.commands.items()
    }

    def build(config: BaseModel, resources: Resources) -> SdkBehaviour:
        own = config.model_dump(mode="json") if built_in else dict(config.model_extra or {})
        return SdkBehaviour(read, own, resources, lends=built_in)

    return AgentType(
        name=read.name,
        description=manifest.description,
        config_model=config_model,
        commands=commands,
        build=build,
        destinations=destinations,
        stays_active=read.agent_class.start is not Agent.start,
    )
