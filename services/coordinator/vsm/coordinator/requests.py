"""S2's request handlers (`coordinator.*` on `vsm.requests`): coordinated notes and state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aio_pika.exceptions import DeliveryError
from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.coordination import (
    CoordinateMessage,
    CoordinationNote,
    CoordinationReceipt,
    System2Query,
)
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.coordinator import notes
from vsm.coordinator.directory import Directory
from vsm.coordinator.outlets import Outlets
from vsm.coordinator.system2 import System2
from vsm.kit.bus import Bus, NotRoutable

Clock = Callable[[], float]
REQUESTS = topology.requests_queue("coordinator")


def register(
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
        except (DeliveryError, NotRoutable) as error:
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
