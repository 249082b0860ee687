"""S1 as one object: the registry, its log and the live agents, kept in step.

A registry change is first made durable in the log (a confirmed publish), then applied here
at once (so the reply can promise the agent answers), and reaches the other replicas from
the stream; applying an event twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.message import Message
from vsm.contract.operations import (
    REGISTRY_BATCH_LIMIT,
    AgentCrashed,
    AgentInfo,
    AgentRehomed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
    RegistryEvent,
    RegistrySnapshot,
    SpawnAgent,
    event_agent_ids,
    partition_of,
)
from vsm.kit import memory
from vsm.kit.bus import Bus
from vsm.kit.egress import EgressPolicy
from vsm.operations.admission import admit
from vsm.operations.cleanup import terminated_within
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
"""Agents of one bulk terminate whose unbindings are in flight at once."""
BATCHES_IN_FLIGHT = 16
"""Registry events of one bulk spawn or terminate (batches) in flight at once."""
RELEASE_AFTER = 100
"""Agents terminated by one request past which the memory freed is given back at once."""
CLEAN_AGAIN_WITHIN = timedelta(minutes=10)
"""At start-up, the results exchanges of the agents terminated this recently (as far as the
registry replayed shows them) are deleted again: those a replica that stopped short of its
background deletions left behind."""

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


def batches(agents: Sequence[AgentInfo], size: int) -> list[list[AgentInfo]]:
    """`agents` in order, grouped by type and viable system, in batches of at most `size`."""
    groups: dict[tuple[str, str], list[AgentInfo]] = {}
    for agent in agents:
        groups.setdefault((agent.agent_type, agent.vsm_id), []).append(agent)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


class System1:
    def __init__(
        self,
        bus: Bus,
        host: AgentHost,
        egress: EgressPolicy,
        agents_per_system: int = 2000,
        offers: HostOffers | None = None,
        *,
        batch: int = REGISTRY_BATCH_LIMIT,
        cleans_up: bool = True,
    ) -> None:
        self.bus = bus
        self.cleans_up = cleans_up
        """Whether this process deletes the results exchanges of terminated agents: operations,
        which logs the terminations, does; an agent host, which only retires its agents, not."""
        self.batch = batch
        """Most agents of a bulk spawn or terminate logged in one event (`VSM_REGISTRY_BATCH`;
        1: each its own `AgentSpawned` or `AgentTerminated`)."""
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
        if changed:
            self.host.registry_changed()
        if live:
            for agent in changed:
                await self.host.sync(agent)

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
        if self.cleans_up:
            self.host.cleanup.forget(self.recently_terminated(datetime.now(UTC)))
        for agent in self.registry.running():
            if agent.partition is None and agent.pool is None and self.host.serves(agent):
                await retire_earlier_queue(self.bus, agent.agent_id)
                await declare_agent(self.bus, agent.agent_id, partition_for(agent, partitions))
            await self.host.sync(agent)
        self.ready.set()

    def recently_terminated(self, now: datetime) -> list[str]:
        """The agents terminated within `CLEAN_AGAIN_WITHIN`, of every type: whichever replica
        logged a termination, and wherever its agent ran, operations deletes its exchange."""
        return terminated_within(self.registry.agents.values(), now, CLEAN_AGAIN_WITHIN)

    async def _log(
        self,
        event: RegistryEvent,
        event_type: str,
        agent_type: str,
        cause: Envelope[Any] | None = None,
    ) -> list[AgentInfo]:
        """The event logged and applied; the agents it names as they now stand (one
        terminated and forgotten already, `TERMINATED_KEPT`, is left out)."""
        await self._record(event, event_type, agent_type, cause)
        return await self._follow(event)

    async def _record(
        self,
        event: RegistryEvent,
        event_type: str,
        agent_type: str,
        cause: Envelope[Any] | None = None,
    ) -> None:
        """The event logged (confirmed by the broker) and applied to the registry here."""
        envelope = await self.host.outlets.logged(event, event_type, agent_type, cause)
        if envelope.id not in self.registry.applied:
            self.ahead.add(envelope.id)
        self.registry.apply(envelope.id, event)
        self.host.registry_changed()

    async def _follow(self, event: RegistryEvent) -> list[AgentInfo]:
        """The live agents here made to follow an event recorded; the agents it names as they
        now stand."""
        standing = []
        for agent_id in event_agent_ids(event):
            # Even when the stream delivered the event first, wait until this replica
            # follows it.
            agent = self.registry.agents.get(agent_id)
            if agent is not None:
                await self.host.sync(agent)
                standing.append(agent)
        return standing

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
        """Spawn each agent asked for that `admit` lets in: their routes declared
        `SPAWNS_IN_FLIGHT` at a time, then logged in batches (`batch` agents of one type per
        event at most); per request, the agent or why not. One whose routes or batch fail
        on the broker is `spawn_failed`, nothing of it left on the broker (with `raising`,
        the error is raised instead)."""
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
        try:
            placed = await each_in_flight(
                admitted, self._place, SPAWNS_IN_FLIGHT, "spawn_failed", raising
            )
            return await self._in_batches(placed, self._log_spawned, "spawn_failed", raising)
        finally:
            for agent in fresh:
                self.pending.pop(agent.agent_id, None)

    async def _place(self, agent: AgentInfo) -> AgentInfo:
        """The agent in its partition, its routes declared (first: what S3 sends it on
        hearing of it, its LLM share, finds it); none of them left behind if that fails."""
        pool = agent.pool
        if pool is None:
            partition = partition_of(agent.agent_id, self.host.partitions)
        else:
            partition = partition_of(agent.agent_id, self.host.type_partitions)
            if pool not in self.pools:  # its hosts declare them too; whoever is first
                await declare_pool(self.bus, pool, self.host.type_partitions)
                self.pools.add(pool)
        agent = agent.model_copy(update={"partition": partition, "one_route": True})
        await self.host.cleanup.claim(agent.agent_id)  # no deletion of an earlier one
        try:
            await declare_agent(self.bus, agent.agent_id, partition, pool)
        except Exception:
            await self._undeclare(agent)
            raise
        return agent

    async def _unbind(self, agent: AgentInfo) -> None:
        """The agent's route into its partition unbound, and the bindings an earlier
        release gave it besides when its record says it is from one (no `one_route`)."""
        lane = self.host.lane_of(agent)
        await unbind_agent(self.bus, agent.agent_id, lane, earlier=not agent.one_route)

    async def _undeclare(self, agent: AgentInfo) -> None:
        """What `_place` declared for an agent never logged, removed (whatever is left); an
        exchange that cannot be deleted now is left to the cleanup (tried again)."""
        with contextlib.suppress(Exception):
            await self._unbind(agent)
        try:
            await forget_agent(self.bus, agent.agent_id)
        except Exception:
            self.host.cleanup.forget([agent.agent_id])

    async def _log_spawned(self, batch: list[AgentInfo]) -> list[AgentInfo]:
        """One batch of placed agents logged as spawned (a lone agent as `AgentSpawned`);
        if that fails, their routes are removed and the error raised."""
        event: RegistryEvent
        event = AgentSpawned(agent=batch[0]) if len(batch) == 1 else AgentsSpawned(agents=batch)
        try:
            await self._log(event, "spawned", batch[0].agent_type)
        except Exception:
            await asyncio.gather(*map(self._undeclare, batch))
            raise
        finally:
            for agent in batch:
                self.pending.pop(agent.agent_id, None)
        return [self.registry.agents.get(a.agent_id) or a for a in batch]

    async def _in_batches(
        self,
        items: Sequence[AgentInfo | Refused],
        work: Callable[[list[AgentInfo]], Awaitable[list[AgentInfo]]],
        failed: str,
        raising: bool,
    ) -> list[AgentInfo | Refused]:
        """`work` done on the agents of `items` in batches of one type and viable system
        (at most `batch` agents each, in order), `BATCHES_IN_FLIGHT` at a time, the
        refusals among them kept in their places: per item, what `work` gave for it or the
        refusal. The agents of a batch whose work fails are refused as `failed`; with
        `raising`, the error is raised."""
        gate = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        outcome: dict[str, AgentInfo | Refused] = {}

        async def one(batch: list[AgentInfo]) -> None:
            async with gate:
                try:
                    done = await work(batch)
                except Exception as error:
                    if raising:
                        raise
                    ids = [a.agent_id for a in batch]
                    log.warning(failed, agent_ids=ids, error=repr(error))
                    for agent_id in ids:
                        outcome[agent_id] = Refused(failed, f"{agent_id}: {error!r}"[:1024])
                    return
                outcome.update((a.agent_id, a) for a in done)

        agents = [a for a in items if isinstance(a, AgentInfo)]
        await asyncio.gather(*map(one, batches(agents, self.batch)))
        return [outcome[a.agent_id] if isinstance(a, AgentInfo) else a for a in items]

    async def terminate(self, agent_id: str, reason: str) -> AgentInfo:
        (agent,) = await self.terminate_many([agent_id], reason, raising=True)
        if isinstance(agent, Refused):
            raise agent
        return agent

    async def terminate_many(
        self, agent_ids: Sequence[str], reason: str, *, raising: bool = False
    ) -> list[AgentInfo | Refused]:
        """Terminate each running agent named: unrouted `TERMINATIONS_IN_FLIGHT` at a time,
        then logged in batches (`batch` agents of one type per event at most), and answered
        then: their results exchanges are deleted in the background (`Cleanup`). Per id,
        the agent as it now stands or why not (`agent_not_found`, also for an id named
        twice). One that fails on the broker is `terminate_failed` (with `raising`, its
        error is raised instead)."""

        async def unroute(agent: AgentInfo) -> AgentInfo:
            # Unrouted first: a command sent from now on is returned as unroutable; one
            # already in its partition is dead-lettered as `agent_terminated` where it is met.
            await self._unbind(agent)
            return agent

        async def stop(batch: list[AgentInfo]) -> list[AgentInfo]:
            return await self._log_terminated(batch, reason)

        found = self.registry.find_each(agent_ids)
        unrouted = await each_in_flight(
            found, unroute, TERMINATIONS_IN_FLIGHT, "terminate_failed", raising
        )
        ended = await self._in_batches(unrouted, stop, "terminate_failed", raising)
        if len(found) >= RELEASE_AFTER:
            memory.release()  # what the retired agents held goes back to the system
        return ended

    async def _log_terminated(self, batch: list[AgentInfo], reason: str) -> list[AgentInfo]:
        """One batch of unrouted agents logged as terminated (a lone agent as
        `AgentTerminated`), their results exchanges left to this replica's cleanup once the
        log has the event (only here: the replica retiring an agent deletes nothing), even
        if retiring them here fails."""
        now = datetime.now(UTC)
        agent_type = batch[0].agent_type
        ids = [a.agent_id for a in batch]
        event: RegistryEvent
        if len(batch) == 1:
            event = AgentTerminated(
                agent_id=ids[0], agent_type=agent_type, reason=reason, terminated_at=now
            )
        else:
            event = AgentsTerminated(
                agent_ids=ids, agent_type=agent_type, reason=reason, terminated_at=now
            )
        await self._record(event, "terminated", agent_type)
        try:
            await self._follow(event)
        finally:
            self.host.cleanup.forget(ids)
        update = {"state": "terminated", "terminated_at": now}
        return [self.registry.agents.get(a.agent_id) or a.model_copy(update=update) for a in batch]

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
