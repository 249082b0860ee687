"""S4's AMQP handlers: decode, feed System 4, publish or reply. Nothing else.

Ack policy (the kit's): ack once a handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.health import HealthReport
from vsm.contract.intelligence import (
    MetaSystemNeedQuery,
    Observation,
    ScanRequest,
    System4StatusQuery,
)
from vsm.contract.operations import CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.contract.system5 import ProposalVerdict
from vsm.intelligence import environment
from vsm.intelligence.anomaly import Anomaly
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.system4 import System4, Trigger
from vsm.kit.bus import Bus

Clock = Callable[[], float]
INTAKE = topology.SYSTEM4_INTELLIGENCE
REQUESTS = topology.requests_queue("intelligence")


class Periodic(NamedTuple):
    """The jobs the app schedules: a scan and a readiness report, each on its interval."""

    scan: Callable[[], Awaitable[None]]
    readiness: Callable[[], Awaitable[None]]


def register(bus: Bus, s4: System4, out: Outlets, clock: Clock = time.time) -> Periodic:
    async def alert_on(found: list[Anomaly], cause: Envelope[Any]) -> None:
        for anomaly in found:
            await out.alert(s4.anomaly_alert(anomaly), cause)

    async def scan(trigger: Trigger, reason: str, cause: Envelope[Any] | None) -> Any:
        result, alerts = s4.scan(clock(), trigger, reason)
        sent = await out.scan(result, cause)
        for alert in alerts:
            await out.alert(alert, sent)
        return result

    @bus.handle(INTAKE, Observation)
    async def on_observation(envelope: Envelope[Observation]) -> None:
        await alert_on(environment.record_observation(s4.env, envelope.data, clock()), envelope)

    @bus.handle(INTAKE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        await alert_on(environment.record_performance(s4.env, envelope.data, clock()), envelope)

    @bus.handle(INTAKE, AlgedonicSignal)
    async def on_algedonic(envelope: Envelope[AlgedonicSignal]) -> None:
        await alert_on(environment.record_algedonic(s4.env, envelope.data, clock()), envelope)

    @bus.handle(INTAKE, CommandResult)
    async def on_result(envelope: Envelope[CommandResult]) -> None:
        await alert_on(environment.record_result(s4.env, envelope.data, clock()), envelope)

    @bus.handle(INTAKE, ProposalVerdict)
    async def on_verdict(envelope: Envelope[ProposalVerdict]) -> None:
        s4.record_verdict(envelope.data.accepted)

    @bus.handle(topology.SYSTEM4_HEALTH, HealthReport)
    async def on_health(envelope: Envelope[HealthReport]) -> None:
        environment.record_health(s4.env, envelope.data, clock())

    @bus.handle(INTAKE, ScanRequest)
    async def on_scan_request(envelope: Envelope[ScanRequest]) -> None:
        await scan("requested", envelope.data.reason, envelope)

    @bus.handle(INTAKE, AdaptationRequest)
    async def on_adaptation_request(envelope: Envelope[AdaptationRequest]) -> None:
        await out.proposal(s4.propose(envelope.data, clock()), envelope)

    @bus.handle(REQUESTS, ScanRequest)
    async def on_scan(envelope: Envelope[ScanRequest]) -> RabbitResponse:
        return bus.reply(await scan("requested", envelope.data.reason, envelope), cause=envelope)

    @bus.handle(REQUESTS, MetaSystemNeedQuery)
    async def on_meta_system_need(envelope: Envelope[MetaSystemNeedQuery]) -> RabbitResponse:
        return bus.reply(s4.need(clock()), cause=envelope)

    @bus.handle(REQUESTS, System4StatusQuery)
    async def on_status(envelope: Envelope[System4StatusQuery]) -> RabbitResponse:
        status = s4.status(clock(), llm_enabled=out.amplifier.enabled)
        return bus.reply(status, cause=envelope)

    async def scheduled_scan() -> None:
        await scan("scheduled", "scheduled", None)

    async def readiness_report() -> None:
        await out.readiness_report(s4.readiness(clock()))

    return Periodic(scan=scheduled_scan, readiness=readiness_report)
