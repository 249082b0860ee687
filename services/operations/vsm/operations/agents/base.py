"""What every agent type shares: its config base, the error a command fails with, the
clients lent to its agents, and `AgentType`, the shape the host runs every type in (an SDK
agent class made one by `vsm.operations.agents.sdk.hosted_type`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsm.contract.errors import Refused
from vsm.contract.operations import AgentInfo
from vsm.kit.llm import Caller, MeteredLlm
from vsm.kit.llm_allowance import LlmAllowance
from vsm.operations.algedonics import AlgedonicThresholds, Feeling

if TYPE_CHECKING:
    from vsm.operations.agents.outbound import Outbound
    from vsm.operations.agents.sdk import SdkBehaviour, SdkCommand


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


def nowhere(config: Any) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class AgentType:
    """One type as the host runs it: its config model, its commands, and how one of its
    agents is built from a validated config and the clients lent to it."""

    name: str
    description: str
    config_model: type[AgentConfig]
    commands: Mapping[str, SdkCommand]
    build: Callable[[Any, Resources], SdkBehaviour]
    destinations: Callable[[Any], list[tuple[str, str]]] = nowhere
    """The URLs a config would call, each with its field (`config.base_urls.0`): checked
    against the operator's egress policy before the agent is spawned."""
    stays_active: bool = False
    """Whether its agents work between commands (a `start` hook: a sensor's polling), so they
    are activated as soon as their partition is served here; the others are activated by
    their first message (command, audit, allocation, note) and cost only their registry
    record while idle."""

    @property
    def capabilities(self) -> dict[str, str]:
        """Each command's name and description."""
        return {name: command.description for name, command in self.commands.items()}
