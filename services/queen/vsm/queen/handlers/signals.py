"""What S5 hears: health reports, algedonic signals, the measures of viability (S1
performance, S2 oscillation, S3 headroom, S4 readiness) and operators' acknowledgements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationReadiness
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import ResourceHeadroom
from vsm.contract.coordination import OscillationIndex
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.health import HealthReport
from vsm.contract.performance import UnitPerformance
from vsm.contract.system5 import AlertAcknowledgement
from vsm.queen import interventions
from vsm.queen.outlets import Outlets
from vsm.queen.recursion import MetaSystems
from vsm.queen.viability import Reading

FORGET_AFTER_S = 3600.0


def performance_index(report: UnitPerformance) -> float | None:
    """Beer's performance (actuality / potentiality), as reported or from its parts."""
    if report.performance is not None:
        return report.performance
    return report.actuality / report.potentiality if report.potentiality > 0 else None


Worked = Callable[[str, int], None]


def register(outlets: Outlets, meta: MetaSystems, worked: Worked) -> None:
    register_algedonic(outlets)
    register_viability_inputs(outlets, meta, worked)


def register_algedonic(outlets: Outlets) -> None:
    """The channel straight to S5: heartbeats, pain and pleasure, operators' acknowledgements."""
    bus, s5 = outlets.bus, outlets.s5

    @bus.handle(topology.SYSTEM5_HEALTH, HealthReport)
    async def on_health_report(envelope: Envelope[HealthReport]) -> None:
        now = datetime.now(UTC)
        s5.board.record(envelope.data, now)
        s5.board.forget_older_than(now, FORGET_AFTER_S)

    @bus.handle(topology.SYSTEM5_ALGEDONIC, AlgedonicSignal)
    async def on_signal(envelope: Envelope[AlgedonicSignal]) -> None:
        await outlets.journal.opened.wait()
        await outlets.restored()  # the interventions kept are back first
        signal = envelope.data
        metrics = outlets.metrics
        metrics.signals.labels(
            metrics.vsm_ids(envelope.vsm_id), signal.kind, metrics.reasons(signal.reason)
        ).inc()
        opened = s5.feel(envelope, datetime.now(UTC))
        if opened is None:
            return
        try:
            await outlets.intervene(opened)
        except Exception:
            s5.withdraw(opened)  # the redelivered signal opens it again
            raise

    @bus.handle(topology.SYSTEM5_OPERATORS, AlertAcknowledgement)
    async def on_acknowledgement(envelope: Envelope[AlertAcknowledgement]) -> None:
        acknowledged = interventions.acknowledge(s5.interventions, envelope.data.alert_id)
        if acknowledged is None:
            raise Unprocessable("unknown_alert", f"no alert {envelope.data.alert_id!r} is open")
        await outlets.keep()
        metrics = outlets.metrics
        metrics.acknowledgements.labels(metrics.vsm_ids(acknowledged.vsm_id)).inc()


def register_viability_inputs(outlets: Outlets, meta: MetaSystems, worked: Worked) -> None:
    """The terms of each system's viability: S4's readiness, S1's performance, S3's headroom,
    S2's oscillation (and S1's work, which keeps a grown child alive)."""
    bus, s5 = outlets.bus, outlets.s5

    @bus.handle(topology.SYSTEM5_INTELLIGENCE, AdaptationReadiness)
    async def on_readiness(envelope: Envelope[AdaptationReadiness]) -> None:
        """Each system's own S4 readiness is a term of its viability; a report about a
        system no longer (or not yet) in the tree measures nothing and is let go."""
        if meta.tree.exists(envelope.vsm_id):
            s5.inputs(envelope.vsm_id).readiness = Reading(envelope.data.readiness, envelope.time)

    @bus.handle(topology.SYSTEM5_PERFORMANCE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        report, inputs = envelope.data, s5.inputs(envelope.vsm_id)
        index = performance_index(report)
        if index is not None:
            inputs.s1[report.agent_id] = Reading(index, envelope.time)
        done = report.succeeded + report.failed
        worked(envelope.vsm_id, done)
        if done:
            inputs.failures[report.agent_id] = Reading(report.failed / done, envelope.time)

    @bus.handle(topology.SYSTEM5_PERFORMANCE, ResourceHeadroom)
    async def on_headroom(envelope: Envelope[ResourceHeadroom]) -> None:
        s5.inputs(envelope.vsm_id).headroom = Reading(envelope.data.headroom, envelope.time)

    @bus.handle(topology.SYSTEM5_PERFORMANCE, OscillationIndex)
    async def on_oscillation(envelope: Envelope[OscillationIndex]) -> None:
        s5.inputs(envelope.vsm_id).oscillation = Reading(envelope.data.index, envelope.time)
