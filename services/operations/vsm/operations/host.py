"""The agents living in this replica: the partitions it consumes, their agents' results,
feelings and measures.

Agents are no queues: their commands reach the replicas through `S1_PARTITIONS` partition
queues, each with a single active consumer. Every replica consumes every partition, so the
broker hands a partition (with its unacknowledged messages) to another replica the moment
the one serving it dies. An agent is activated where its partition is served, on the first
message for it (virtual-actor style): until then it is only its registry record and says
nothing (S3 learns of it from the registry's events, not from a report of no work). Only
agents whose type works between commands (`stays_active`: a sensor's polling) are activated
eagerly, on the partitions this replica owns (`Placement`: rendezvous hashing over the live
replicas). A replica that serves a partition another live replica owns hands it over at its
next message: it holds what has not started, lets what has started finish, then gives the
partition back by closing that partition's channel, so the broker passes the partition with
the held messages still first in line to the next replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import CoordinationNote
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.operations import (
    MAX_PAYLOAD_BYTES,
    AgentCommand,
    AgentInfo,
    AuditReport,
    AuditRequest,
    CommandResult,
    agent_routes,
    serving_queue,
)
from vsm.contract.performance import UnitPerformance
from vsm.kit.bus import Bus
from vsm.kit.consumer import Delivery, DirectConsumers, LeaveQueued
from vsm.kit.llm_allowance import LlmAllowance
from vsm.kit.locks import KeyedLocks
from vsm.operations.agent import Agent, NotStarted
from vsm.operations.agents.base import AgentType, Resources
from vsm.operations.agents.catalog import AGENT_TYPES
from vsm.operations.algedonics import Feeling
from vsm.operations.cleanup import Cleanup
from vsm.operations.metrics import Metrics, declared_command, narrow_command_key
from vsm.operations.outlets import Outlets
from vsm.operations.performance import report_due
from vsm.operations.placement import Placement
from vsm.operations.wiring import Lane as LaneKey
from vsm.operations.wiring import lane_of

log = structlog.get_logger("vsm.operations.host")

CRASH_REPORT_INTERVAL_S = 60.0
"""At most one `agent_crashed` event per agent per minute: the registry log must not flood."""

CrashReport = Callable[[AgentInfo, BaseException], Awaitable[None]]
Lookup = Callable[[str], AgentInfo | None]

REPORTS_IN_FLIGHT = 64
"""Performance reports of one interval in flight at once (each confirmed by the broker)."""
REGISTRY_WAIT_S = 5.0
"""How long a message for an agent this replica's registry does not know yet waits for the
registry log to bring it (spawned on another replica a moment ago)."""
HANDOVER_PAUSE_S = 5.0
"""A partition just taken up is not handed over again before this long (no ping-pong while
the replicas' views of each other settle)."""


@dataclass
class Lane:
    """This replica's consumption of one partition, on a channel of its own."""

    pool: str | None
    partition: int
    consumers: DirectConsumers
    since: float
    started: int = 0
    """Messages under way (admitted, not yet settled)."""
    delivered: int = 0
    """Messages received since taken up: none, and the broker serves it to another replica."""
    holding: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when, holding, the last message under way is settled."""
    released: asyncio.Event = field(default_factory=asyncio.Event)


def addressee(routing_key: str) -> str:
    """The agent a message on a partition is for, from its routing key: `<type>.<id>.<cmd>`
    (commands and audits on `vsm.s1.commands`), `allocation.<id>.changed` (S3, on
    `vsm.control`), `s1.<id>.note` (S2, on `vsm.coordination`); the two-word keys of earlier
    versions (`allocation.<id>`, `s1.<id>`) may still be queued after an upgrade."""
    parts = routing_key.split(".")
    if len(parts) in (2, 3) and 0 < len(parts[1]) <= 64:
        return parts[1]
    raise Unprocessable("misaddressed", f"no agent in routing key {routing_key[:200]!r}")


def check_size(body: bytes) -> None:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise Unprocessable(
            "payload_too_large", f"{len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )


def check_addressee(command: AgentCommand, agent_id: str) -> None:
    """A command that names an agent runs only on that agent (the name is signed with it)."""
    if command.agent_id is not None and command.agent_id != agent_id:
        raise Unprocessable(
            "misaddressed", f"the command is for agent {command.agent_id!r}, not {agent_id!r}"
        )


class AgentHost:
    def __init__(
        self,
        bus: Bus,
        consumers: DirectConsumers,
        resources: Resources | None,
        window_s: float,
        instance: str,
        *,
        refresh_s: float | None = None,
        partitions: int = 16,
        placement_ttl_s: float = 10.0,
        placement_fresh_s: float | None = None,
        kinds: Mapping[str, AgentType] = AGENT_TYPES,
        pools: Iterable[str | None] = (None,),
        type_partitions: int = 4,
    ) -> None:
        self.bus = bus
        self.consumers = consumers
        self.partitions = partitions
        self.type_partitions = type_partitions
        self.kinds = kinds
        """The agent types this host runs."""
        self.placement_ttl_s = placement_ttl_s
        self.placements = {
            pool: Placement(
                instance,
                partitions if pool is None else type_partitions,
                placement_ttl_s,
                placement_fresh_s,
            )
            for pool in pools
        }
        """Per pool served (None: operations' partitions; else a type's), who owns which of
        its partitions."""
        self.lanes: dict[LaneKey, Lane] = {}
        self.lookup: Lookup = lambda agent_id: None
        """The registry's view of an agent (set by S1)."""
        self.handovers = 0
        self._activating: dict[str, asyncio.Future[Agent | None]] = {}
        self.stirring: dict[str, bool] = {}
        """The agents whose report may say something new: those that worked since the last
        tick (True) or whose measures are still moving (False). Idle agents are not here."""
        self._news = asyncio.Event()
        self._handing_over: set[asyncio.Task[None]] = set()
        bus.telemetry.routes.narrowers.append(narrow_command_key)
        pool = None if None in self.placements else "{agent_type}"
        agents = agent_routes("{agent_id}", "{partition}", pool)  # type: ignore[arg-type]
        bus.interface.receives(
            agents, AgentCommand, AuditRequest, AllocationChanged, CoordinationNote
        )
        bus.interface.answers(agents, CommandResult, AuditReport)
        self.outlets = Outlets(bus)
        self.cleanup = Cleanup(bus)
        """The results exchanges of terminated agents, deleted in the background."""
        self.instance = instance
        self.resources = resources
        self.window_s = window_s
        self.refresh_every = max(1, round((refresh_s or window_s) / window_s))
        """Reporting ticks between two reports of an agent that has nothing new to say."""
        self.agents: dict[str, Agent] = {}
        self.locks = KeyedLocks()
        self.crash_reported: dict[str, float] = {}
        """When each live agent's last crash was reported (forgotten when it retires)."""
        self.report_crash: CrashReport | None = None
        self.metrics: Metrics | None = None
        self._reporter: asyncio.Task[None] | None = None

    def lane_of(self, info: AgentInfo) -> LaneKey:
        return lane_of(info, self.partitions, self.type_partitions)

    def serves(self, info: AgentInfo) -> bool:
        """Whether agents like `info` are run here: its pool served, its type known."""
        return info.pool in self.placements and info.agent_type in self.kinds

    def heard(self, instance: str, pools: Iterable[str | None], ready: bool, now: float) -> bool:
        """A heartbeat of a host serving `pools`; True when who serves a pool here changed."""
        changed = False
        for pool in pools:
            placement = self.placements.get(pool)
            if placement is not None:
                changed = placement.heard(instance, ready, now) or changed
        return changed

    def owned(self, now: float) -> int:
        """Partitions this host owns, over its pools."""
        return sum(len(placement.owned(now)) for placement in self.placements.values())

    async def sync(self, info: AgentInfo) -> None:
        """Make this replica follow the registry's view of one agent (idempotent): a running
        agent of a partition it owns is activated if its type stays active (else left
        dormant: activated by its first message); a terminated one retired."""
        live = self.agents.get(info.agent_id)
        if info.state == "running" and live is not None:
            live.info = info
        elif info.state == "running" and self.owns(info):
            await self._wake(info)
        elif info.state == "terminated" and live is not None:
            async with self.locks.hold(info.agent_id):
                await self._retire(live)

    async def _wake(self, info: AgentInfo) -> None:
        """An agent of a partition owned here: activated if its type works between commands;
        else left dormant, saying nothing until its first message activates it."""
        if self.kinds[info.agent_type].stays_active:
            await self.activated(info.agent_id, info)

    def owns(self, info: AgentInfo) -> bool:
        if not self.serves(info):
            return False
        pool, partition = self.lane_of(info)
        return self.placements[pool].owner(partition, time.monotonic()) == self.instance

    async def activated(self, agent_id: str, info: AgentInfo | None = None) -> Agent | None:
        """The live agent, activated here from the registry if it is not yet; None for an
        agent the registry does not know as running (after waiting a moment for it)."""
        agent = self.agents.get(agent_id)
        if agent is not None:
            return agent
        activating = self._activating.get(agent_id)
        if activating is not None:  # behind the messages that came first, in their order
            return await asyncio.shield(activating)
        done: asyncio.Future[Agent | None] = asyncio.get_running_loop().create_future()
        self._activating[agent_id] = done
        try:
            async with self.locks.hold(agent_id):
                agent = self.agents.get(agent_id)
                if agent is None:
                    info = info or await self._known(agent_id)
                    if info is not None and info.state == "running" and self.serves(info):
                        agent = await self._activate(info)
        except BaseException as error:
            done.set_exception(error)
            done.exception()  # retrieved: nobody may be waiting for it
            raise
        finally:
            del self._activating[agent_id]
        done.set_result(agent)
        return agent

    async def _known(self, agent_id: str) -> AgentInfo | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REGISTRY_WAIT_S):
                while (info := self.lookup(agent_id)) is None:
                    await self._news.wait()
                return info
        return None

    def registry_changed(self) -> None:
        """The registry took an event: whoever waits for an agent to be known looks again."""
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def _activate(self, info: AgentInfo) -> Agent:
        if self.resources is None:
            raise RuntimeError("agents need the clients built at start-up")
        kind = self.kinds[info.agent_type]
        config = kind.config_model.model_validate(info.config)
        allowance = LlmAllowance()
        resources = self.resources.charged_to(info, allowance)
        behaviour = kind.build(config, resources)
        agent: Agent
        agent = Agent(
            info,
            config,
            behaviour,
            commands=kind.commands,
            window_s=self.window_s,
            feel=lambda feeling: self._feel(agent, feeling),
            crash=lambda error: self._crashed(agent, error),
            llm_allowance=allowance,
        )
        self.agents[info.agent_id] = agent
        await behaviour.start(agent.feel, agent.crash)
        self.stirring[info.agent_id] = True  # its first report
        log.debug("agent_activated", agent_id=info.agent_id, agent_type=info.agent_type)
        return agent

    # Partitions ---------------------------------------------------------------------------
    async def consume_partitions(self) -> None:
        """Consume every partition of every pool served (single active consumer: the broker
        picks one host)."""
        for pool, placement in self.placements.items():
            for partition in range(placement.partitions):
                await self._take_up((pool, partition))

    async def _take_up(self, key: LaneKey) -> None:
        pool, partition = key
        lane = Lane(pool, partition, self.consumers.sibling(), time.monotonic())
        self.lanes[key] = lane

        async def on_message(envelope: Envelope[Any], delivery: Delivery) -> None:
            await self._on_message(lane, envelope, delivery)

        await lane.consumers.consume(serving_queue(pool, partition), on_message)

    async def _on_message(self, lane: Lane, envelope: Envelope[Any], delivery: Delivery) -> None:
        lane.delivered += 1
        if not lane.holding and self._hand_over_due(lane):
            lane.holding = True
            task = asyncio.create_task(self._hand_over(lane), name="s1-hand-over")
            self._handing_over.add(task)
            task.add_done_callback(self._handing_over.discard)
        if lane.holding:  # given back with the partition, still first in line
            await lane.released.wait()
            raise LeaveQueued
        lane.started += 1
        try:
            await self._dispatch(envelope, delivery)
        finally:
            lane.started -= 1
            if lane.holding and lane.started == 0:
                lane.drained.set()

    def _hand_over_due(self, lane: Lane) -> bool:
        now = time.monotonic()
        if now - lane.since < HANDOVER_PAUSE_S:
            return False
        placement = self.placements[lane.pool]
        owner = placement.owner(lane.partition, now)
        return owner != self.instance and placement.fresh(owner, now)

    async def _hand_over(self, lane: Lane) -> None:
        """Give the partition to the replica that owns it: what started here finishes and is
        acked, what has not is given back in its order by closing the channel; its agents
        are deactivated here (not terminated) and the partition consumed again, last in
        line, to take it back should its owner die."""
        if lane.started > 0:
            await lane.drained.wait()
        await lane.consumers.abandon()
        lane.released.set()
        self.handovers += 1
        key = (lane.pool, lane.partition)
        log.info("partition_handed_over", pool=lane.pool, partition=lane.partition)
        await self._deactivate_partition(key)
        try:
            await self._take_up(key)
        except Exception as error:
            log.error("partition_not_consumed", lane=key, error=repr(error))

    async def _deactivate_partition(self, key: LaneKey) -> None:
        for agent in list(self.agents.values()):
            if self.lane_of(agent.info) == key:
                async with self.locks.hold(agent.info.agent_id):
                    if self.agents.get(agent.info.agent_id) is agent:
                        await agent.behaviour.stop()
                        del self.agents[agent.info.agent_id]

    async def placement_changed(self, running: list[AgentInfo]) -> None:
        """The live replicas changed: activate the agents of the partitions now owned here
        (e.g. a sensor's polling) and deactivate those of the partitions owned elsewhere
        that this replica does not serve."""
        now = time.monotonic()
        owned = {
            (pool, partition)
            for pool, placement in self.placements.items()
            for partition in placement.owned(now)
        }
        log.info("placement_changed", owned=len(owned))
        for key, lane in list(self.lanes.items()):
            if key not in owned and lane.delivered == 0:
                await self._deactivate_partition(key)
        for info in running:
            if info.agent_id in self.agents or not self.serves(info):
                continue
            if self.lane_of(info) in owned:
                await self._wake(info)

    async def _dispatch(self, envelope: Envelope[Any], delivery: Delivery) -> None:
        """One message for one agent, dispatched on the envelope's type. Consumed directly
        (not a FastStream subscriber): the hottest traffic here. Answers go out from the
        handler, a command's before its result is published."""
        check_size(delivery.body)
        agent_id = addressee(delivery.message.routing_key or "")
        agent = await self.activated(agent_id)
        if agent is None or agent.terminated:
            raise Unprocessable("agent_terminated", f"no running agent {agent_id!r}")
        match envelope.data:
            case AgentCommand() as command:
                check_addressee(command, agent.info.agent_id)
                await self._command(agent, command, envelope, delivery)
            case AuditRequest(audit_type=audit_type):
                report = AuditReport(
                    agent_id=agent.info.agent_id,
                    agent_type=agent.info.agent_type,
                    audit_type=audit_type,
                    report={
                        **agent.audit(audit_type),
                        "instance": self.instance,
                        "partition": self.lane_of(agent.info)[1],
                        "pool": agent.info.pool,
                    },
                )
                await self.outlets.answer(
                    delivery.reply_to, delivery.correlation_id, report, envelope
                )
            case AllocationChanged() as change:
                await agent.allocate(change)
                self.stirring[agent.info.agent_id] = True
                log.info(
                    "allocation_changed",
                    agent_id=agent.info.agent_id,
                    slots=agent.slots.capacity,
                    max_rate_per_s=agent.rate.per_s,
                    reason=change.reason,
                )
            case CoordinationNote() as note:
                agent.receive(note, envelope.id)
            case _:
                raise Unprocessable("unexpected_type", f"no handler here for {envelope.type!r}")

    async def _command(
        self,
        agent: Agent,
        command: AgentCommand,
        envelope: Envelope[Any],
        delivery: Delivery,
    ) -> None:
        """Run it; answer the requester first (it waits), then tell the observers; the
        delivery is acked once both are out."""
        try:
            result = await agent.run(command)
        except NotStarted as stopping:  # neither acked nor nacked: the broker keeps it
            raise LeaveQueued from stopping
        await self.outlets.answer(delivery.reply_to, delivery.correlation_id, result, envelope)
        await self.outlets.result(agent.info, result, envelope)
        self.stirring[agent.info.agent_id] = True
        self._count(agent, result)

    def _count(self, agent: Agent, result: CommandResult) -> None:
        if self.metrics is None:
            return
        info = agent.info
        command = declared_command(info.agent_type, result.command_type, self.kinds)
        seconds = result.processing_time_ms / 1000
        self.metrics.command_done(info.vsm_id, info.agent_type, command, result.status, seconds)

    async def _retire(self, agent: Agent) -> None:
        """A terminated agent, unrouted already by the replica that logged its termination
        (what is still queued for it is dead-lettered where it is met, answering its
        requesters): stopped. Its results exchange is that replica's to delete, not this
        one's (`System1._log_terminated`): one deletion per agent."""
        agent.terminated = True
        agent_id = agent.info.agent_id
        await agent.behaviour.stop()
        self.agents.pop(agent_id, None)
        self.crash_reported.pop(agent_id, None)
        log.debug("agent_retired", agent_id=agent_id)

    async def _feel(self, agent: Agent, feeling: Feeling) -> None:
        signal = AlgedonicSignal(
            kind=feeling.kind,
            intensity=feeling.intensity,
            origin=f"operations/{agent.info.agent_id}",
            reason=feeling.reason,
            episode=feeling.episode,
            context={
                **feeling.context,
                "agent_id": agent.info.agent_id,
                "agent_type": agent.info.agent_type,
            },
        )
        await self.outlets.felt(agent.info, signal)
        log.warning("algedonic_signal", agent_id=agent.info.agent_id, kind=feeling.kind)

    async def _crashed(self, agent: Agent, error: BaseException) -> None:
        log.error("agent_crashed", agent_id=agent.info.agent_id, error=repr(error), exc_info=error)
        now = time.monotonic()
        last = self.crash_reported.get(agent.info.agent_id)
        if self.report_crash is None or (last is not None and now - last < CRASH_REPORT_INTERVAL_S):
            return
        self.crash_reported[agent.info.agent_id] = now
        try:
            await self.report_crash(agent.info, error)
        except Exception as failure:
            log.error("crash_report_failed", error=repr(failure))

    # Performance reports ----------------------------------------------------------------
    def start_reporting(self) -> None:
        self._reporter = asyncio.create_task(self._report_forever(), name="s1-performance")

    async def _report_forever(self) -> None:
        """Each interval, the report of every stirring agent that has something new to say
        (or, still working, is due for a refresh: `report_due`) goes to `vsm.control`. An
        agent leaves the stirring ones once it is idle and its report says what the last one
        said: an idle agent sends nothing, and a tick costs what changed, not the agents."""
        tick = 0
        while True:
            await asyncio.sleep(self.window_s)
            tick += 1
            await self._report(tick)

    async def _report(self, tick: int) -> None:
        stirring, self.stirring = self.stirring, {}
        due: list[Awaitable[None]] = []
        for agent_id, worked in stirring.items():
            agent = self.agents.get(agent_id)
            if agent is None or agent.terminated:
                continue  # retired, or deactivated here (handed over with its partition)
            report = agent.performance()
            if report == agent.reported and not worked and not agent.monitor.in_pain:
                continue  # quiet now: it leaves the stirring agents
            self.stirring.setdefault(agent_id, False)
            if report_due(report, agent.reported, tick, self.refresh_every):
                due.append(self._report_active(agent, report))
        # Confirmed one by one, 10,000 first reports would take the broker's round trip
        # 10,000 times over: `REPORTS_IN_FLIGHT` of them are in flight at once.
        gate = asyncio.Semaphore(REPORTS_IN_FLIGHT)

        async def one(report: Awaitable[None]) -> None:
            async with gate:
                await report

        await asyncio.gather(*map(one, due))

    async def _report_active(self, agent: Agent, report: UnitPerformance) -> None:
        try:
            # Not mandatory: S3 binds to these reports when it wants them; a report nobody
            # reads is no error; one that failed is tried again next interval.
            await self.outlets.performance(agent.info, report)
            agent.reported = report
        except Exception as error:
            log.warning("performance_report_failed", error=repr(error))

    async def stop(self, cleanup_s: float = 0.0) -> None:
        """Shut down within the grace period: the commands running finish and are acked;
        those waiting for a slot, and whatever arrives now, stay with the broker (unacked,
        so redelivered to the next consumer) instead of being run first; the results
        exchanges still to be deleted are, within `cleanup_s` (the rest counted in a log)."""
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        for agent in self.agents.values():
            agent.stop_admitting()
        await asyncio.gather(*(lane.consumers.stop() for lane in self.lanes.values()))
        await self.consumers.stop()
        for agent in self.agents.values():
            await agent.behaviour.stop()
        await self.cleanup.drain(cleanup_s)
