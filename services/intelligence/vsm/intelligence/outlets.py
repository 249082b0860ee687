"""What S4 says on `vsm.intelligence` (and, for its rules, on `vsm.algedonic`): documented
publishers and the rules for each. Every message names the viable system it is about.

Alerts, explanations, scan results, readiness and observations are broadcasts: published
without the mandatory flag, since nobody listening is no failure. A proposal answers S5's
request and is mandatory: if it cannot be routed the handler fails and the request is
redelivered, then dead-lettered, never silently lost. A rule's pain or pleasure is
mandatory too: S5's intake must take it.
"""

from __future__ import annotations

from typing import Any

from vsm.contract import topology
from vsm.contract.adaptation import (
    READINESS_KEY,
    AdaptationProposal,
    AdaptationReadiness,
    alert_key,
    proposal_key,
)
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.intelligence import (
    ALERT_EXPLAINED_KEY,
    SCAN_RESULT_KEY,
    AlertExplanation,
    IntelligenceAlert,
    Observation,
    ScanResult,
    observation_key,
)
from vsm.intelligence.amplifier import Amplifier
from vsm.intelligence.judgement import Said
from vsm.kit.bus import Bus

AnyEnvelope = Envelope[Any]


class Outlets:
    def __init__(self, bus: Bus, amplifier: Amplifier) -> None:
        self.amplifier = amplifier
        on = topology.INTELLIGENCE
        self.alerts = bus.publisher(on, IntelligenceAlert, routing_key=alert_key("*"))
        self.explanations = bus.publisher(on, AlertExplanation, routing_key=ALERT_EXPLAINED_KEY)
        self.scans = bus.publisher(on, ScanResult, routing_key=SCAN_RESULT_KEY)
        self.proposals = bus.publisher(on, AdaptationProposal, routing_key=proposal_key("*"))
        self.readiness = bus.publisher(on, AdaptationReadiness, routing_key=READINESS_KEY)
        self.observations = bus.publisher(
            on,
            Observation,
            routing_key=observation_key("rule/<name>"),
            description="A rule's `observe` outcome: S4's own observation of its environment.",
        )
        self.signals = bus.publisher(
            topology.ALGEDONIC,
            AlgedonicSignal,
            description="A rule's `pain` or `pleasure` outcome, for the system it judged.",
        )

    async def alert(
        self, alert: IntelligenceAlert, cause: AnyEnvelope | None, vsm_id: str | None = None
    ) -> None:
        """Publish the alert, then (in the background) its explanation, caused by it."""
        sent = await self.alerts.publish(
            alert,
            routing_key=alert_key(alert.severity),
            cause=cause,
            vsm_id=vsm_id,
            subject=alert.series,
            priority=7 if alert.severity == "critical" else 5,
            mandatory=False,
        )

        async def explained(explanation: AlertExplanation) -> None:
            await self.explanations.publish(explanation, cause=sent, mandatory=False)

        self.amplifier.explain_later(alert, explained, sent.vsm_id)

    async def said(self, message: Said, vsm_id: str, cause: AnyEnvelope | None) -> None:
        """What a rule's firing says, about the system `vsm_id`."""
        if isinstance(message, IntelligenceAlert):
            await self.alert(message, cause, vsm_id)
        elif isinstance(message, Observation):
            key = observation_key(message.source)
            await self.observations.publish(
                message, routing_key=key, cause=cause, vsm_id=vsm_id, mandatory=False
            )
        else:
            await self.signals.publish(message, cause=cause, vsm_id=vsm_id, subject=message.origin)

    async def scan(
        self, result: ScanResult, cause: AnyEnvelope | None, vsm_id: str | None = None
    ) -> AnyEnvelope:
        return await self.scans.publish(result, cause=cause, vsm_id=vsm_id, mandatory=False)

    async def proposal(self, proposal: AdaptationProposal, cause: AnyEnvelope) -> None:
        await self.proposals.publish(proposal, routing_key=proposal_key(proposal.kind), cause=cause)

    async def readiness_report(self, report: AdaptationReadiness, vsm_id: str) -> None:
        await self.readiness.publish(report, vsm_id=vsm_id, mandatory=False)
