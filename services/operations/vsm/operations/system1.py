"""S1 as one object: the registry, its log and the live agents, kept in step.

A registry change is first made durable in the log (a confirmed publish), then applied here
at once (so the reply can promise the agent answers), and reaches the other replicas from
the stream; applying an event twice is harmless.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from vsm.contract.message import Message
from vsm.contract.operations import (
    AgentCrashed,
    AgentInfo,
    AgentSpawned,
    AgentTerminated,
    partition_of,
)
from vsm.kit.bus import Bus
from vsm.kit.egress import EgressPolicy
from vsm.operations.host import AgentHost
from vsm.operations.registry import Registry, new_agent
from vsm.operations.wiring import (
    declare_agent,
    forget_agent,
    partition_for,
    retire_earlier_queue,
    unbind_agent,
)


class System1:
    def __init__(
        self, bus: Bus, host: AgentHost, egress: EgressPolicy, agents_per_system: int = 2000
    ) -> None:
        self.bus = bus
        self.agents_per_system = agents_per_system
        self.host = host
        self.egress = egress
        self.registry = Registry()
        self.ready = asyncio.Event()
        host.report_crash = self.crashed
        host.lookup = self.registry.agents.get

    async def wait_ready(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self.ready.wait()

    async def apply(self, event_id: str, event: Message, live: bool) -> None:
        """Apply a logged event; once replay is over, make the live agents follow it."""
        changed = self.registry.apply(event_id, event)
        if changed is not None:
            self.host.registry_changed()
        if changed is not None and live:
            await self.host.sync(changed)

    async def caught_up(self) -> None:
        """The registry replayed: agents from before partitions leave their own queues (their
        routes bound into their partitions), the agents of this replica's partitions start."""
        partitions = self.host.partitions
        for agent in self.registry.running():
            if agent.partition is None:
                await retire_earlier_queue(self.bus, agent.agent_id)
                await declare_agent(self.bus, agent.agent_id, partition_for(agent, partitions))
            await self.host.sync(agent)
        self.ready.set()

    async def _log(
        self, event: AgentSpawned | AgentTerminated | AgentCrashed, event_type: str, agent_type: str
    ) -> None:
        envelope = await self.host.outlets.logged(event, event_type, agent_type)
        self.registry.apply(envelope.id, event)
        self.host.registry_changed()
        agent_id = event.agent.agent_id if isinstance(event, AgentSpawned) else event.agent_id
        # Even when the stream delivered the event first, wait until this replica follows it.
        await self.host.sync(self.registry.agents[agent_id])

    async def spawn(
        self,
        agent_type: str,
        config: dict[str, object],
        name: str | None = None,
        vsm_id: str = "root",
    ) -> AgentInfo:
        self.registry.check_quota(vsm_id, self.agents_per_system)
        if name is not None:
            self.registry.check_name_free(name, vsm_id)
        now = datetime.now(UTC)
        agent = new_agent(agent_type, dict(config), now, name, vsm_id, egress=self.egress)
        partition = partition_of(agent.agent_id, self.host.partitions)
        agent = agent.model_copy(update={"partition": partition})
        # Its routes first: what S3 sends it on hearing of it (its LLM share) finds it.
        await declare_agent(self.bus, agent.agent_id, partition)
        await self._log(AgentSpawned(agent=agent), "spawned", agent_type)
        return self.registry.find(agent.agent_id)

    async def terminate(self, agent_id: str, reason: str) -> AgentInfo:
        agent = self.registry.find(agent_id)
        event = AgentTerminated(
            agent_id=agent_id,
            agent_type=agent.agent_type,
            reason=reason,
            terminated_at=datetime.now(UTC),
        )
        # Unrouted first: a command sent from now on is returned as unroutable; one already
        # in its partition is dead-lettered as `agent_terminated` where it is met.
        await unbind_agent(self.bus, agent_id, partition_for(agent, self.host.partitions))
        await self._log(event, "terminated", agent.agent_type)
        await forget_agent(self.bus, agent_id)
        return self.registry.agents[agent_id]

    async def crashed(self, agent: AgentInfo, error: BaseException) -> None:
        event = AgentCrashed(
            agent_id=agent.agent_id,
            agent_type=agent.agent_type,
            error=repr(error)[:1024],
            crashed_at=datetime.now(UTC),
        )
        await self._log(event, "crashed", agent.agent_type)
