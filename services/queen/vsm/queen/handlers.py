"""Queen's AMQP subscribers: decode, call the domain, publish. Nothing else.

Ack policy (the kit's): ack when the handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, AdaptationReadiness
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.health import HealthReport
from vsm.contract.performance import UnitPerformance
from vsm.contract.system5 import AlertAcknowledgement
from vsm.queen import interventions
from vsm.queen.actions import Actions
from vsm.queen.viability import Reading

FORGET_AFTER_S = 3600.0


def performance_index(report: UnitPerformance) -> float | None:
    """Beer's performance (actuality / potentiality), as reported or from its parts."""
    if report.performance is not None:
        return report.performance
    return report.actuality / report.potentiality if report.potentiality > 0 else None


def register(actions: Actions) -> None:
    bus, s5 = actions.bus, actions.s5

    @bus.handle(topology.SYSTEM5_HEALTH, HealthReport)
    async def on_health_report(envelope: Envelope[HealthReport]) -> None:
        now = datetime.now(UTC)
        s5.board.record(envelope.data, now)
        s5.board.forget_older_than(now, FORGET_AFTER_S)

    @bus.handle(topology.SYSTEM5_ALGEDONIC, AlgedonicSignal)
    async def on_signal(envelope: Envelope[AlgedonicSignal]) -> None:
        await actions.journal.opened.wait()
        signal = envelope.data
        actions.metrics.signals.labels(envelope.vsm_id, signal.kind, signal.reason).inc()
        opened = s5.feel(envelope, datetime.now(UTC))
        if opened is None:
            return
        try:
            await actions.intervene(opened)
        except Exception:
            s5.withdraw(opened)  # the redelivered signal opens it again
            raise

    @bus.handle(topology.SYSTEM5_INTELLIGENCE, AdaptationProposal)
    async def on_proposal(envelope: Envelope[AdaptationProposal]) -> None:
        await actions.consider(envelope)

    @bus.handle(topology.SYSTEM5_INTELLIGENCE, AdaptationReadiness)
    async def on_readiness(envelope: Envelope[AdaptationReadiness]) -> None:
        s5.inputs(envelope.vsm_id).readiness = Reading(envelope.data.readiness, envelope.time)

    @bus.handle(topology.SYSTEM5_PERFORMANCE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        index = performance_index(envelope.data)
        if index is not None:
            s5.inputs(envelope.vsm_id).s1[envelope.data.agent_id] = Reading(index, envelope.time)

    @bus.handle(topology.SYSTEM5_OPERATORS, AlertAcknowledgement)
    async def on_acknowledgement(envelope: Envelope[AlertAcknowledgement]) -> None:
        acknowledged = interventions.acknowledge(s5.interventions, envelope.data.alert_id)
        if acknowledged is None:
            raise Unprocessable("unknown_alert", f"no alert {envelope.data.alert_id!r} is open")
        actions.metrics.acknowledgements.labels(acknowledged.vsm_id).inc()
