"""S2's AMQP handlers: its intake (registry, allocations, algedonic signals) and its
requests (`coordinator.*` on `vsm.requests`: coordinated notes and state): decode, update
System 2, publish or reply. Nothing else.

Ack policy (the kit's): ack once a handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
(Work items are not here: they are held until settled, see `holding`.)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import (
    CoordinateMessage,
    CoordinationNote,
    CoordinationReceipt,
    OscillationIndex,
    QueuePressure,
    Rescheduled,
    System2Query,
    System2Snapshot,
)
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.operations import (
    AgentCrashed,
    AgentRehomed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
)
from vsm.coordinator import notes
from vsm.coordinator.directory import Directory
from vsm.coordinator.dispatcher import Dispatcher
from vsm.coordinator.oscillation import algedonic_subject
from vsm.coordinator.outlets import Outlets
from vsm.coordinator.system2 import System2
from vsm.kit.bus import Bus, Undelivered
from vsm.kit.journal import StateJournal

Clock = Callable[[], float]
INTAKE = topology.SYSTEM2_COORDINATION
REQUESTS = topology.requests_queue("coordinator")
LANE_IDLE_S = 3600.0
log = structlog.get_logger("vsm.coordinator.handlers")


def register(
    bus: Bus,
    s2: System2,
    dispatcher: Dispatcher,
    directory: Directory,
    out: Outlets,
    *,
    journal: StateJournal[System2Snapshot],
    clock: Clock = time.monotonic,
    wall: Clock = time.time,
    refresh_s: float = 60.0,
) -> Callable[[], Awaitable[None]]:
    """Register the handlers; the periodic oscillation report, for the app to schedule.
    Nothing is read before S2's journal is; a damping is journaled before it is announced,
    the rest of S2's state at each report. A system's index and pressure go out when they
    changed since they last went out, while work waits or runs (pressure), or once
    `refresh_s` passed; an idle S2 repeats nothing sooner."""
    _registry(bus, s2, dispatcher)
    _oscillation(bus, s2, dispatcher, directory, out, journal=journal, clock=clock, wall=wall)
    _requests(bus, s2, directory, out, journal=journal, clock=clock, wall=wall)

    last = Reported(refresh_s)

    async def report_oscillation() -> None:
        await journal.opened.wait()
        now, tick = wall(), clock()
        pressures = s2.fleet.pressures(s2.lanes.waiting())  # the one walk over the agents
        staffed = {v for v, types in pressures.items() if any(t.agents for t in types.values())}
        systems = {bus.vsm_id} | staffed | s2.detector.systems()  # = s2.systems(bus.vsm_id)
        running: dict[str, list[str]] | None = None  # walked only when something flaps
        for vsm_id in sorted(systems):
            flapping = s2.detector.flapping(vsm_id, now)
            value = 0.0
            if flapping:
                running = s2.running_by_system() if running is None else running
                value = s2.index(vsm_id, now, running.get(vsm_id, []))
            index = OscillationIndex(index=value, flapping=flapping)
            if last.due(("index", vsm_id), index, tick):
                await out.index(index, vsm_id)
            types = pressures.get(vsm_id)
            if types:
                pressure = QueuePressure(types=dict(sorted(types.items())[:64]))
                busy = any(t.queued or t.in_flight for t in pressure.types.values())
                if last.due(("pressure", vsm_id), pressure, tick, always=busy):
                    await out.pressure(pressure, vsm_id)
        last.forget(systems)
        s2.detector.forget_calm(now)
        s2.lanes.forget_idle(clock(), idle_s=LANE_IDLE_S)
        await journal.keep()

    return report_oscillation


class Reported:
    """What each periodic report last said, per (report, viable system), and when."""

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self.said: dict[tuple[str, str], tuple[object, float]] = {}

    def due(self, key: tuple[str, str], content: object, now: float, always: bool = False) -> bool:
        """Whether `content` goes out now (then it is remembered as said)."""
        said = self.said.get(key)
        repeated = said is not None and said[0] == content and now - said[1] < self.refresh_s
        if repeated and not always:
            return False
        self.said[key] = (content, now)
        return True

    def forget(self, systems: set[str]) -> None:
        for key in [k for k in self.said if k[1] not in systems]:
            del self.said[key]


def _registry(bus: Bus, s2: System2, dispatcher: Dispatcher) -> None:
    @bus.handle(INTAKE, AgentSpawned)
    async def on_spawned(envelope: Envelope[AgentSpawned]) -> None:
        s2.fleet.learn(envelope.data.agent)
        dispatcher.wake.set()

    @bus.handle(INTAKE, AgentRehomed)
    async def on_rehomed(envelope: Envelope[AgentRehomed]) -> None:
        s2.fleet.rehome(envelope.data.agent, envelope.data.from_vsm_id)
        dispatcher.wake.set()

    @bus.handle(INTAKE, AgentsSpawned)
    async def on_spawned_batch(envelope: Envelope[AgentsSpawned]) -> None:
        for agent in envelope.data.agents:
            s2.fleet.learn(agent)
        dispatcher.wake.set()

    @bus.handle(INTAKE, AgentTerminated)
    async def on_terminated(envelope: Envelope[AgentTerminated]) -> None:
        s2.fleet.retire(envelope.data.agent_id)
        await dispatcher.drop_agent(envelope.data.agent_id)

    @bus.handle(INTAKE, AgentsTerminated)
    async def on_terminated_batch(envelope: Envelope[AgentsTerminated]) -> None:
        for agent_id in envelope.data.agent_ids:
            s2.fleet.retire(agent_id)
            await dispatcher.drop_agent(agent_id)

    @bus.handle(INTAKE, AgentCrashed)
    async def on_crashed(envelope: Envelope[AgentCrashed]) -> None:
        """A crash leaves the agent running: its slots stay as they are."""
        log.info("agent_crashed", agent_id=envelope.data.agent_id)


def _oscillation(
    bus: Bus,
    s2: System2,
    dispatcher: Dispatcher,
    directory: Directory,
    out: Outlets,
    *,
    journal: StateJournal[System2Snapshot],
    clock: Clock,
    wall: Clock,
) -> None:
    @bus.handle(INTAKE, AllocationChanged)
    async def on_allocation(envelope: Envelope[AllocationChanged]) -> None:
        await journal.opened.wait()
        change = envelope.data
        moved = None
        if await directory.known(change.agent_id):
            moved = s2.fleet.allocate(change, clock())
        if moved is None:  # terminated meanwhile: there is nothing to reschedule
            log.info("allocation_for_unknown_agent", agent_id=change.agent_id)
            return
        agent = s2.fleet.agents[change.agent_id]
        dispatcher.wake.set()
        rescheduled = Rescheduled(
            agent_id=agent.agent_id,
            capacity=agent.slots,
            max_rate_per_s=agent.max_rate_per_s,
            queued=s2.lanes.queued_for(agent.agent_id),
        )
        await out.reschedule(rescheduled, agent.vsm_id, envelope)
        flap = s2.detector.observe(agent.agent_id, agent.vsm_id, "allocation", moved, wall())
        if flap is not None:
            await journal.keep()
            await out.flap(flap, agent.vsm_id, envelope)

    @bus.handle(INTAKE, AdaptationAction)
    async def on_adaptation(envelope: Envelope[AdaptationAction]) -> None:
        """S3 carried out a step: S2 sheds or resumes the lane, and watches the scale."""
        step = envelope.data
        if step.action in ("shed", "resume"):
            s2.shed(step.target, step.action == "shed")
            dispatcher.wake.set()
        move = {"spawn": 1, "retire": -1}.get(step.action, 0)
        subject = f"scale:{step.target}"
        flap = s2.detector.observe(subject, envelope.vsm_id, "scale", move, wall())
        if flap is not None:
            await out.flap(flap, envelope.vsm_id, envelope)

    @bus.handle(INTAKE, AlgedonicSignal)
    async def on_algedonic(envelope: Envelope[AlgedonicSignal]) -> None:
        await journal.opened.wait()
        signal = envelope.data
        subject = algedonic_subject(signal.origin, signal.context)
        if subject is None:
            return
        known = s2.fleet.agents.get(subject)
        vsm_id = known.vsm_id if known else envelope.vsm_id
        move = 1 if signal.kind == "pleasure" else -1
        flap = s2.detector.observe(subject, vsm_id, "algedonic", move, wall())
        if flap is not None:
            await journal.keep()
            await out.flap(flap, vsm_id, envelope)


def _requests(
    bus: Bus,
    s2: System2,
    directory: Directory,
    out: Outlets,
    *,
    journal: StateJournal[System2Snapshot],
    clock: Clock,
    wall: Clock,
) -> None:
    @bus.handle(REQUESTS, CoordinateMessage)
    async def on_coordinate(envelope: Envelope[CoordinateMessage]) -> RabbitResponse:
        request = envelope.data
        try:
            for agent_id in (request.from_agent, request.to_agent):
                await directory.known(agent_id)
        except Exception as error:  # the registry did not answer: say so, do not guess
            raise Refused("registry_unavailable", f"S1 registry: {error!r}") from error
        refused = notes.refusal(s2.fleet, request.from_agent, request.to_agent)
        if refused is None and not s2.notes.allow(request.from_agent, request.to_agent, clock()):
            refused = notes.rate_limited(request.from_agent, request.to_agent, s2.notes.rate_per_s)
        if refused is not None:
            return bus.reply(refused, cause=envelope)
        note = CoordinationNote(**request.model_dump())
        try:
            sent = await out.note(note, envelope)
        except Undelivered as error:
            raise Refused(
                "not_delivered",
                f"nothing takes notes for {request.to_agent!r}: {error}",
                {"to_agent": request.to_agent},
            ) from error
        s2.notes.delivered += 1
        receipt = CoordinationReceipt(
            note_id=sent.id,
            from_agent=request.from_agent,
            to_agent=request.to_agent,
            delivered_at=datetime.now(UTC),
        )
        return bus.reply(receipt, cause=envelope)

    @bus.handle(REQUESTS, System2Query)
    async def on_state(envelope: Envelope[System2Query]) -> RabbitResponse:
        await journal.opened.wait()
        return bus.reply(s2.state(envelope.vsm_id, clock(), wall()), cause=envelope)
