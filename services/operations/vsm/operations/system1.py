"""S1 as one object: the registry, its log and the live agents, kept in step.

A registry change is first made durable in the log (a confirmed publish), then applied here
at once (so the reply can promise the agent answers), and reaches the other replicas from
the stream; applying an event twice is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.message import Message
from vsm.contract.operations import (
    AgentCrashed,
    AgentInfo,
    AgentRehomed,
    AgentSpawned,
    AgentTerminated,
    RegistrySnapshot,
    SpawnAgent,
    partition_of,
)
from vsm.kit import memory
from vsm.kit.bus import Bus
from vsm.kit.egress import EgressPolicy
from vsm.operations.admission import admit
from vsm.operations.host import AgentHost
from vsm.operations.offers import HostOffers
from vsm.operations.registry import Registry
from vsm.operations.wiring import (
    declare_agent,
    declare_pool,
    forget_agent,
    partition_for,
    retire_earlier_queue,
    unbind_agent,
)

SPAWNS_IN_FLIGHT = 64
"""Agents of one bulk spawn whose declarations and registry events are in flight at once."""
TERMINATIONS_IN_FLIGHT = 64
"""Agents of one bulk terminate whose unbindings, registry events and deletions are in flight
at once."""
RELEASE_AFTER = 100
"""Agents terminated by one request past which the memory freed is given back at once."""

log = structlog.get_logger("vsm.operations.system1")


async def each_in_flight(
    items: Sequence[AgentInfo | Refused],
    work: Callable[[AgentInfo], Awaitable[AgentInfo]],
    in_flight: int,
    failed: str,
    raising: bool,
) -> list[AgentInfo | Refused]:
    """`work` done on each agent of `items`, `in_flight` at a time, the refusals among them
    kept in their places: per item, what `work` gave or the refusal. An agent whose work
    fails (on the broker) is refused as `failed`; with `raising`, the error is raised."""
    gate = asyncio.Semaphore(in_flight)

    async def one(agent: AgentInfo) -> AgentInfo | Refused:
        async with gate:
            try:
                return await work(agent)
            except Exception as error:
                if raising:
                    raise
                log.warning(failed, agent_id=agent.agent_id, error=repr(error))
                return Refused(failed, f"{agent.agent_id}: {error!r}"[:1024])

    done = iter(await asyncio.gather(*(one(a) for a in items if isinstance(a, AgentInfo))))
    return [next(done) if isinstance(a, AgentInfo) else a for a in items]


class System1:
    def __init__(
        self,
        bus: Bus,
        host: AgentHost,
        egress: EgressPolicy,
        agents_per_system: int = 2000,
        offers: HostOffers | None = None,
    ) -> None:
        self.bus = bus
        self.offers = offers if offers is not None else HostOffers(ttl_s=10.0)
        """The agent types agent hosts offer (heard by `Membership`)."""
        self.pools: set[str] = set()
        """The pools whose queues this replica has declared."""
        self.agents_per_system = agents_per_system
        self.host = host
        self.egress = egress
        self.registry = Registry()
        self.pending: dict[str, AgentInfo] = {}
        """Agents admitted and not yet logged: the quota and the names count them."""
        self.ahead: set[str] = set()
        """Ids of this replica's events applied before the log gave them back."""
        self.ready = asyncio.Event()
        host.report_crash = self.crashed
        host.lookup = self.registry.get

    async def wait_ready(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self.ready.wait()

    async def apply(self, event_id: str, event: Message, live: bool) -> None:
        """Apply a logged event; once replay is over, make the live agents follow it."""
        self.ahead.discard(event_id)
        changed = self.registry.apply(event_id, event)
        if changed is not None:
            self.host.registry_changed()
        if changed is not None and live:
            await self.host.sync(changed)

    def snapshot(self, covers: int | None) -> RegistrySnapshot:
        """The running agents, as of the log's entry at `covers` and this replica's events
        applied beyond it."""
        return RegistrySnapshot(
            agents=self.registry.running(), covers=covers, ahead=sorted(self.ahead)
        )

    def restore(self, snapshot: RegistrySnapshot) -> None:
        """The registry a snapshot holds (before any event after it is applied)."""
        self.registry.restore(snapshot.agents, snapshot.ahead)

    async def caught_up(self) -> None:
        """The registry replayed: agents from before partitions leave their own queues (their
        routes bound into their partitions), the agents of this replica's partitions start."""
        partitions = self.host.partitions
        for agent in self.registry.running():
            if agent.partition is None and agent.pool is None and self.host.serves(agent):
                await retire_earlier_queue(self.bus, agent.agent_id)
                await declare_agent(self.bus, agent.agent_id, partition_for(agent, partitions))
            await self.host.sync(agent)
        self.ready.set()

    async def _log(
        self,
        event: AgentSpawned | AgentTerminated | AgentCrashed | AgentRehomed,
        event_type: str,
        agent_type: str,
        cause: Envelope[Any] | None = None,
    ) -> AgentInfo | None:
        """The event logged and applied; the agent as it now stands (None: forgotten)."""
        envelope = await self.host.outlets.logged(event, event_type, agent_type, cause)
        if envelope.id not in self.registry.applied:
            self.ahead.add(envelope.id)
        changed = self.registry.apply(envelope.id, event)
        self.host.registry_changed()
        if isinstance(event, AgentSpawned | AgentRehomed):
            agent_id = event.agent.agent_id
        else:
            agent_id = event.agent_id
        # Even when the stream delivered the event first, wait until this replica follows it.
        agent = self.registry.agents.get(agent_id) or changed
        if agent is not None:  # else terminated and forgotten (`TERMINATED_KEPT`) already
            await self.host.sync(agent)
        return agent

    async def spawn(
        self,
        agent_type: str,
        config: dict[str, object],
        name: str | None = None,
        vsm_id: str = "root",
    ) -> AgentInfo:
        request = SpawnAgent(agent_type=agent_type, config=config, name=name)
        (agent,) = await self.spawn_many([request], vsm_id, raising=True)
        if isinstance(agent, Refused):
            raise agent
        return agent

    async def spawn_many(
        self, requests: Sequence[SpawnAgent], vsm_id: str = "root", *, raising: bool = False
    ) -> list[AgentInfo | Refused]:
        """Spawn each agent asked for that `admit` lets in, `SPAWNS_IN_FLIGHT` at a time; per
        request, the agent or why not. One that fails on the broker is `spawn_failed` (with
        `raising`, its error is raised instead)."""
        known = [*self.registry.agents.values(), *self.pending.values()]
        now = datetime.now(UTC)
        admitted = admit(
            requests,
            known,
            vsm_id,
            self.agents_per_system,
            now=now,
            egress=self.egress,
            offers=self.offers,
            monotonic=time.monotonic(),
        )
        fresh = [a for a in admitted if isinstance(a, AgentInfo)]
        self.pending.update((a.agent_id, a) for a in fresh)

        async def start(agent: AgentInfo) -> AgentInfo:
            try:
                return await self._start(agent)
            finally:
                self.pending.pop(agent.agent_id, None)

        return await each_in_flight(admitted, start, SPAWNS_IN_FLIGHT, "spawn_failed", raising)

    async def _start(self, agent: AgentInfo) -> AgentInfo:
        pool = agent.pool
        if pool is None:
            partition = partition_of(agent.agent_id, self.host.partitions)
        else:
            partition = partition_of(agent.agent_id, self.host.type_partitions)
            if pool not in self.pools:  # its hosts declare them too; whoever is first
                await declare_pool(self.bus, pool, self.host.type_partitions)
                self.pools.add(pool)
        agent = agent.model_copy(update={"partition": partition})
        # Its routes first: what S3 sends it on hearing of it (its LLM share) finds it.
        await declare_agent(self.bus, agent.agent_id, partition, pool)
        await self._log(AgentSpawned(agent=agent), "spawned", agent.agent_type)
        return self.registry.find(agent.agent_id)

    async def terminate(self, agent_id: str, reason: str) -> AgentInfo:
        (agent,) = await self.terminate_many([agent_id], reason, raising=True)
        if isinstance(agent, Refused):
            raise agent
        return agent

    async def terminate_many(
        self, agent_ids: Sequence[str], reason: str, *, raising: bool = False
    ) -> list[AgentInfo | Refused]:
        """Terminate each running agent named, `TERMINATIONS_IN_FLIGHT` at a time; per id,
        the agent as it now stands or why not (`agent_not_found`, also for an id named twice).
        One that fails on the broker is `terminate_failed` (with `raising`, its error is
        raised instead)."""

        async def stop(agent: AgentInfo) -> AgentInfo:
            return await self._stop(agent, reason)

        found = self.registry.find_each(agent_ids)
        ended = await each_in_flight(
            found, stop, TERMINATIONS_IN_FLIGHT, "terminate_failed", raising
        )
        if len(found) >= RELEASE_AFTER:
            memory.release()  # what the retired agents held goes back to the system
        return ended

    async def _stop(self, agent: AgentInfo, reason: str) -> AgentInfo:
        agent_id = agent.agent_id
        event = AgentTerminated(
            agent_id=agent_id,
            agent_type=agent.agent_type,
            reason=reason,
            terminated_at=datetime.now(UTC),
        )
        # Unrouted first: a command sent from now on is returned as unroutable; one already
        # in its partition is dead-lettered as `agent_terminated` where it is met.
        await unbind_agent(self.bus, agent_id, self.host.lane_of(agent))
        retired_here = agent_id in self.host.agents  # its retirement deletes the exchange
        ended = await self._log(event, "terminated", agent.agent_type)
        if not retired_here:
            await forget_agent(self.bus, agent_id)
        update = {"state": "terminated", "terminated_at": event.terminated_at}
        return ended or agent.model_copy(update=update)

    async def rehome(
        self, vsm_id: str, agent_type: str, to_vsm_id: str, reason: str, cause: Envelope[Any]
    ) -> list[AgentInfo]:
        """Move the running agents of a type from one viable system to another (a structural
        change: their work, reports and allocation follow them)."""
        moved = []
        for agent in self.registry.of_type(vsm_id, agent_type):
            there = agent.model_copy(update={"vsm_id": to_vsm_id})
            event = AgentRehomed(agent=there, from_vsm_id=vsm_id, reason=reason)
            await self._log(event, "rehomed", agent_type, cause)
            moved.append(self.registry.agents[agent.agent_id])
        return moved

    async def crashed(self, agent: AgentInfo, error: BaseException) -> None:
        event = AgentCrashed(
            agent_id=agent.agent_id,
            agent_type=agent.agent_type,
            error=repr(error)[:1024],
            crashed_at=datetime.now(UTC),
        )
        await self._log(event, "crashed", agent.agent_type)
