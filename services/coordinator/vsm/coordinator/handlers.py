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
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import (
    CoordinateMessage,
    CoordinationNote,
    CoordinationReceipt,
    OscillationIndex,
    Rescheduled,
    System2Query,
)
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.operations import AgentCrashed, AgentSpawned, AgentTerminated
from vsm.coordinator import notes
from vsm.coordinator.directory import Directory
from vsm.coordinator.dispatcher import Dispatcher
from vsm.coordinator.oscillation import algedonic_subject
from vsm.coordinator.outlets import Outlets
from vsm.coordinator.system2 import System2
from vsm.kit.bus import Bus, Undelivered

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
    clock: Clock = time.monotonic,
    wall: Clock = time.time,
) -> Callable[[], Awaitable[None]]:
    """Register the handlers; the periodic oscillation report, for the app to schedule."""
    _registry(bus, s2, dispatcher)
    _oscillation(bus, s2, dispatcher, directory, out, clock=clock, wall=wall)
    _requests(bus, s2, directory, out, clock=clock, wall=wall)

    async def report_oscillation() -> None:
        now = wall()
        for vsm_id in sorted(s2.systems(bus.vsm_id)):
            index = OscillationIndex(
                index=s2.index(vsm_id, now), flapping=s2.detector.flapping(vsm_id, now)
            )
            await out.index(index, vsm_id)
        s2.detector.forget_calm(now)
        s2.lanes.forget_idle(clock(), idle_s=LANE_IDLE_S)

    return report_oscillation


def _registry(bus: Bus, s2: System2, dispatcher: Dispatcher) -> None:
    @bus.handle(INTAKE, AgentSpawned)
    async def on_spawned(envelope: Envelope[AgentSpawned]) -> None:
        s2.fleet.learn(envelope.data.agent)
        dispatcher.wake.set()

    @bus.handle(INTAKE, AgentTerminated)
    async def on_terminated(envelope: Envelope[AgentTerminated]) -> None:
        s2.fleet.retire(envelope.data.agent_id)
        await dispatcher.drop_agent(envelope.data.agent_id)

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
    clock: Clock,
    wall: Clock,
) -> None:
    @bus.handle(INTAKE, AllocationChanged)
    async def on_allocation(envelope: Envelope[AllocationChanged]) -> None:
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
            await out.flap(flap, agent.vsm_id, envelope)

    @bus.handle(INTAKE, AlgedonicSignal)
    async def on_algedonic(envelope: Envelope[AlgedonicSignal]) -> None:
        signal = envelope.data
        subject = algedonic_subject(signal.origin, signal.context)
        if subject is None:
            return
        known = s2.fleet.agents.get(subject)
        vsm_id = known.vsm_id if known else envelope.vsm_id
        move = 1 if signal.kind == "pleasure" else -1
        flap = s2.detector.observe(subject, vsm_id, "algedonic", move, wall())
        if flap is not None:
            await out.flap(flap, vsm_id, envelope)


def _requests(
    bus: Bus, s2: System2, directory: Directory, out: Outlets, *, clock: Clock, wall: Clock
) -> None:
    @bus.handle(REQUESTS, CoordinateMessage)
    async def on_coordinate(envelope: Envelope[CoordinateMessage]) -> RabbitResponse:
        request = envelope.data
        try:
            for agent_id in (request.from_agent, request.to_agent):
                await directory.known(agent_id)
        except Exception as error:  # the registry did not answer: say so, do not guess
            unknown = ErrorReply(code="registry_unavailable", message=f"S1 registry: {error!r}")
            return bus.reply(unknown, cause=envelope)
        refused = notes.refusal(s2.fleet, request.from_agent, request.to_agent)
        if refused is None and not s2.notes.allow(request.from_agent, request.to_agent, clock()):
            refused = notes.rate_limited(request.from_agent, request.to_agent, s2.notes.rate_per_s)
        if refused is not None:
            return bus.reply(refused, cause=envelope)
        note = CoordinationNote(**request.model_dump())
        try:
            sent = await out.note(note, envelope)
        except Undelivered as error:
            undelivered = ErrorReply(
                code="not_delivered",
                message=f"nothing takes notes for {request.to_agent!r}: {error}",
                details={"to_agent": request.to_agent},
            )
            return bus.reply(undelivered, cause=envelope)
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
        return bus.reply(s2.state(envelope.vsm_id, clock(), wall()), cause=envelope)
