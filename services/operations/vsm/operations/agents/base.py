"""What every agent type shares: its config base, the error a command fails with, resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vsm.contract.errors import Refused
from vsm.contract.operations import AgentInfo, CommandInfo
from vsm.kit.llm import Caller, MeteredLlm
from vsm.kit.llm_allowance import LlmAllowance
from vsm.operations.algedonics import AlgedonicThresholds, Feeling

if TYPE_CHECKING:
    from vsm.operations.agents.outbound import Outbound


CommandFailed = Refused
"""A command that cannot succeed: the agent answers an error result with its code. The
SDK's `Refused`, so a built-in type's command (an SDK command) keeps its code too."""


class AgentConfig(BaseModel):
    """Config every type accepts: its concurrency now and at most, and its algedonic limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allocation: int = Field(default=4, ge=1, le=256)
    max_allocation: int = Field(default=16, ge=1, le=1024)
    algedonic: AlgedonicThresholds = Field(default_factory=AlgedonicThresholds)

    @model_validator(mode="after")
    def _allocation_within_maximum(self) -> AgentConfig:
        if self.allocation > self.max_allocation:
            raise ValueError("allocation must not exceed max_allocation")
        return self


Feel = Callable[[Feeling], Awaitable[None]]
Crash = Callable[[BaseException], Awaitable[None]]


@dataclass(frozen=True)
class Resources:
    """Clients built once at start-up and shared by every agent of this replica."""

    outbound: Outbound
    llm: MeteredLlm | None
    """Claude, metered; None without an API key."""
    llm_retry_deadline_s: float
    agent: AgentInfo | None = None
    """The agent these resources are lent to (`charged_to`)."""

    def charged_to(self, agent: AgentInfo, allowance: LlmAllowance) -> Resources:
        """The same clients lent to `agent`, its LLM calls charged to it, within its allowance."""
        if self.llm is None:
            return replace(self, agent=agent)
        caller = Caller(agent.agent_id, agent.agent_type, agent.vsm_id)
        return replace(self, llm=self.llm.on_behalf_of(caller, allowance), agent=agent)


class Behaviour(Protocol):
    """What an agent of a type is between commands: started, stopped, shown to an auditor.
    What it does with a command is declared by its type's `commands`."""

    def state(self) -> dict[str, Any]: ...

    async def start(self, feel: Feel, crash: Crash) -> None: ...

    async def stop(self) -> None: ...


BehaviourT = TypeVar("BehaviourT")
InputT = TypeVar("InputT", bound=BaseModel)
Answer = dict[str, Any] | BaseModel


class BrokenPromise(Exception):
    """A command answered something its declared output model does not admit: the agent's
    own fault, reported as a crash."""


@dataclass(frozen=True)
class Command(Generic[BehaviourT, InputT]):
    """One command a type declares: what it does, the model its `data` must fit (checked
    before `run`), what it answers (checked after) and the behaviour's method that does it."""

    description: str
    input: type[InputT]
    run: Callable[[BehaviourT, InputT], Awaitable[Answer]]
    output: type[BaseModel] | None = None

    async def perform(self, behaviour: BehaviourT, data: dict[str, Any]) -> dict[str, Any]:
        """`data` validated (`ValidationError` names the field), done, and its answer as
        JSON data, checked against the output model when one is declared."""
        request = self.input.model_validate(data)
        answer = await self.run(behaviour, request)
        if isinstance(answer, BaseModel):
            return answer.model_dump(mode="json")
        if self.output is not None:
            try:
                self.output.model_validate(answer)
            except ValidationError as error:
                message = f"the answer does not fit {self.output.__name__}: {error}"
                raise BrokenPromise(message) from error
        return answer

    def info(self) -> CommandInfo:
        return CommandInfo(
            description=self.description,
            input_schema=self.input.model_json_schema(),
            output_schema=self.output.model_json_schema(mode="serialization")
            if self.output
            else None,
        )


Commands = Mapping[str, Command[Any, Any]]


class Passive:
    """For behaviours with nothing running between commands."""

    async def start(self, feel: Feel, crash: Crash) -> None:
        return None

    async def stop(self) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {}


def nowhere(config: Any) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class AgentType:
    name: str
    description: str
    config_model: type[AgentConfig]
    commands: Commands
    build: Callable[[Any, Resources], Behaviour]
    destinations: Callable[[Any], list[tuple[str, str]]] = nowhere
    """The URLs a config would call, each with its field (`config.base_urls.0`): checked
    against the operator's egress policy before the agent is spawned."""

    @property
    def capabilities(self) -> dict[str, str]:
        """Each command's name and description."""
        return {name: command.description for name, command in self.commands.items()}
