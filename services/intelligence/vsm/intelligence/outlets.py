"""What S4 says on `vsm.intelligence`: documented publishers and the rules for each.

Alerts, explanations, scan results and readiness are broadcasts: published without the
mandatory flag, since nobody listening is no failure. A proposal answers S5's request and is
mandatory: if it cannot be routed the handler fails and the request is redelivered, then
dead-lettered, never silently lost.
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
from vsm.contract.envelope import Envelope
from vsm.contract.intelligence import (
    ALERT_EXPLAINED_KEY,
    SCAN_RESULT_KEY,
    AlertExplanation,
    IntelligenceAlert,
    ScanResult,
)
from vsm.intelligence.amplifier import Amplifier
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

    async def alert(self, alert: IntelligenceAlert, cause: AnyEnvelope | None) -> None:
        """Publish the alert, then (in the background) its explanation, caused by it."""
        sent = await self.alerts.publish(
            alert,
            routing_key=alert_key(alert.severity),
            cause=cause,
            subject=alert.series,
            priority=7 if alert.severity == "critical" else 5,
            mandatory=False,
        )

        async def explained(explanation: AlertExplanation) -> None:
            await self.explanations.publish(explanation, cause=sent, mandatory=False)

        self.amplifier.explain_later(alert, explained)

    async def scan(self, result: ScanResult, cause: AnyEnvelope | None) -> AnyEnvelope:
        return await self.scans.publish(result, cause=cause, mandatory=False)

    async def proposal(self, proposal: AdaptationProposal, cause: AnyEnvelope) -> None:
        await self.proposals.publish(proposal, routing_key=proposal_key(proposal.kind), cause=cause)

    async def readiness_report(self, report: AdaptationReadiness) -> None:
        await self.readiness.publish(report, mandatory=False)
