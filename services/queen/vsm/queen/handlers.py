"""Queen's AMQP handlers: decode, call the domain, reply or publish. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import HealthReport, StatusQuery
from vsm.kit.bus import Bus
from vsm.queen.domain import HealthBoard, system_status

FORGET_AFTER_S = 3600.0


def register(bus: Bus, board: HealthBoard) -> None:
    @bus.handle(topology.SYSTEM5_HEALTH, HealthReport)
    async def on_health_report(envelope: Envelope[HealthReport]) -> None:
        now = datetime.now(UTC)
        board.record(envelope.data, now)
        board.forget_older_than(now, FORGET_AFTER_S)

    @bus.handle(topology.requests_queue("queen"), StatusQuery)
    async def on_status_query(envelope: Envelope[StatusQuery]) -> RabbitResponse:
        status = system_status(board, datetime.now(UTC), envelope.vsm_id)
        return bus.reply(status, cause=envelope)
