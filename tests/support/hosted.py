"""One agent of an SDK type, run as operations' host runs it (the type made a host's type by
`hosted_type`, its `Agent` holding slots, rate, feelings and remembered results), without
broker or host process: for the tests of that machinery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vsm.agent import Agent as SdkAgent
from vsm.contract.operations import AgentInfo
from vsm.kit.egress import EgressPolicy, OnDemand
from vsm.operations.agent import Agent
from vsm.operations.agents.base import Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.sdk import hosted_type
from vsm.operations.algedonics import Feeling


@dataclass
class Hosted:
    """The agent, and what it told its host: feelings sent to S5, crashes reported."""

    agent: Agent
    felt: list[Feeling]
    crashes: list[BaseException]

    @property
    def running(self) -> SdkAgent[Any]:
        """The instance of the SDK class that does the commands."""
        assert self.agent.behaviour.running is not None
        return self.agent.behaviour.running.agent


async def hosted(
    agent_class: type[SdkAgent[Any]],
    config: dict[str, Any] | None = None,
    *,
    built_in: bool = False,
    unlisted: tuple[str, ...] = (),
) -> Hosted:
    """A started agent of `agent_class` with `config` (`allocation` read by the host);
    `built_in` as operations' own types are hosted; the commands `unlisted` are declared by
    the type but not among the agent's capabilities (those it was spawned with)."""
    kind = hosted_type(agent_class, built_in=built_in)
    valid = kind.config_model.model_validate(config or {})
    info = AgentInfo(
        agent_id=f"{kind.name}-1",
        agent_type=kind.name,
        config=valid.model_dump(mode="json"),
        capabilities=[name for name in kind.capabilities if name not in unlisted],
        allocation=valid.allocation,
        max_allocation=valid.max_allocation,
        spawned_at=datetime.now(UTC),
    )
    nowhere = EgressPolicy()
    outbound = Outbound(OnDemand(nowhere, 5.0), nowhere)
    resources = Resources(outbound=outbound, llm=None, llm_retry_deadline_s=0.0, agent=info)
    felt: list[Feeling] = []
    crashes: list[BaseException] = []

    async def feel(feeling: Feeling) -> None:
        felt.append(feeling)

    async def crash(error: BaseException) -> None:
        crashes.append(error)

    behaviour = kind.build(valid, resources)
    agent = Agent(
        info, valid, behaviour, commands=kind.commands, window_s=10, feel=feel, crash=crash
    )
    await behaviour.start(feel, crash)
    return Hosted(agent, felt, crashes)
