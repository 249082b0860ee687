"""What every agent type shares: its config base, the error a command fails with, resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsm.kit.llm import Caller, MeteredLlm
from vsm.kit.llm_allowance import LlmAllowance
from vsm.operations.algedonics import AlgedonicThresholds, Feeling

if TYPE_CHECKING:
    from vsm.operations.agents.outbound import Outbound


class CommandFailed(Exception):
    """A command that cannot succeed; the agent answers an error result with this code."""

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})


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

    def charged_to(
        self, agent_id: str, agent_type: str, vsm_id: str, allowance: LlmAllowance
    ) -> Resources:
        """The same clients, with LLM calls charged to this agent, within its allowance."""
        if self.llm is None:
            return self
        caller = Caller(agent_id, agent_type, vsm_id)
        return replace(self, llm=self.llm.on_behalf_of(caller, allowance))


class Behaviour(Protocol):
    """What an agent type does with a command it declares, and what it shows an auditor."""

    async def execute(self, command: str, data: dict[str, Any]) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    async def start(self, feel: Feel, crash: Crash) -> None: ...

    async def stop(self) -> None: ...


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
    capabilities: Mapping[str, str]
    build: Callable[[Any, Resources], Behaviour]
    destinations: Callable[[Any], list[tuple[str, str]]] = nowhere
    """The URLs a config would call, each with its field (`config.base_urls.0`): checked
    against the operator's egress policy before the agent is spawned."""
