"""What S5 does on the broker: intervene, escalate, answer S4's proposals.

The I/O shell around the domain: each method takes a decision already made by the pure
modules and turns it into messages, always with the cause that led to them.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.adaptation import ADAPTATION_REQUEST_KEY, AdaptationProposal, AdaptationRequest
from vsm.contract.envelope import Envelope
from vsm.contract.system5 import (
    Escalation,
    InterventionOpened,
    InterventionResolved,
    OperatorAlert,
    ProposalVerdict,
    System5Snapshot,
    escalation_key,
    intervention_key,
    operator_alert_key,
    verdict_key,
)
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal
from vsm.queen import interventions
from vsm.queen.interventions import Intervention
from vsm.queen.journal import PolicyJournal
from vsm.queen.llm import LlmProposer
from vsm.queen.metrics import Metrics
from vsm.queen.policies import PolicyRejected
from vsm.queen.rules import Anomaly, lift
from vsm.queen.synthesis import apply_rules
from vsm.queen.system5 import System5
from vsm.queen.viability import fresh

log = structlog.get_logger("vsm.queen.outlets")
HEALTHY_FAILURE_SHARE = 0.1
"""A throttled unit is healthy again (its limit is lifted) when at most this share fails."""


def anomaly_of(intervention: Intervention) -> Anomaly:
    """The anomaly an intervention answers: its dominant reason, origin and the signal context."""
    signal = intervention.cause.data
    context = {k: v for k, v in signal.context.items() if isinstance(v, str | int | float | bool)}
    context["origin"] = intervention.origin or signal.origin
    return Anomaly(intervention.reason, intervention.episode.pain_at_open, context)


@dataclass
class Outlets:
    bus: Bus
    s5: System5
    journal: PolicyJournal
    metrics: Metrics
    proposer: LlmProposer | None
    matters: StateJournal[System5Snapshot] | None = None
    """S5's interventions and approvals kept on the broker (`vsm.queen.matters`)."""

    async def keep(self) -> None:
        """Write the interventions and approvals as they are now (nothing if unchanged)."""
        if self.matters is not None:
            await self.matters.keep()

    async def restored(self) -> None:
        """Wait until the interventions and approvals kept are back (at start-up)."""
        if self.matters is not None:
            await self.matters.opened.wait()

    def __post_init__(self) -> None:
        bus = self.bus
        self.adaptation_requests = bus.publisher(
            topology.INTELLIGENCE, AdaptationRequest, routing_key=ADAPTATION_REQUEST_KEY
        )
        self.escalations = bus.publisher(
            topology.RECURSIVE, Escalation, routing_key="escalation.<parent vsm_id>"
        )
        self.alerts = bus.publisher(
            topology.OPERATORS, OperatorAlert, routing_key="alert.<severity>"
        )
        self.verdicts = bus.publisher(
            topology.INTELLIGENCE, ProposalVerdict, routing_key="adaptation.verdict.<outcome>"
        )
        self.opened = bus.publisher(
            topology.INTERVENTIONS, InterventionOpened, routing_key="opened.<vsm_id>"
        )
        self.resolved = bus.publisher(
            topology.INTERVENTIONS, InterventionResolved, routing_key="resolved.<vsm_id>"
        )

    async def intervene(self, intervention: Intervention) -> None:
        """Announce it, apply a rules policy, ask S4 to adapt (never waits on an LLM).

        The announcement and the policy it causes are published together: the policy names
        the announcement's id as its cause, and neither waits for the other's confirm. If
        either fails, the signal is redelivered and opens the intervention again (the same
        policy again makes no new version)."""
        episode, anomaly = intervention.episode, anomaly_of(intervention)
        await self.keep()  # kept before it is announced
        opened = self.bus.envelope(
            InterventionOpened(
                intervention_id=intervention.id,
                trigger=episode.trigger,
                reason=intervention.reason,
                origin=intervention.origin,
                pain_level=round(min(1.0, episode.pain_at_open), 6),
                signals=list(episode.causes),
            ),
            cause=intervention.cause,
            vsm_id=intervention.vsm_id,
        )
        announced = asyncio.ensure_future(
            self.bus.send(
                topology.INTERVENTIONS,
                opened,
                routing_key=intervention_key("opened", intervention.vsm_id),
            )
        )
        try:
            record, refused = await apply_rules(
                self.journal,
                intervention.vsm_id,
                anomaly,
                opened,
                intervention_id=intervention.id,
                causation=[*episode.causes, opened.id],
            )
        finally:
            await announced
        intervention.opened = opened
        cause = opened
        if record is not None:
            intervention.policy_type, intervention.policy_version = (
                record.policy_type,
                record.version,
            )
            if record.policy_type == "throttle":
                intervention.throttled = anomaly.target
        else:
            log.warning(
                "intervention_without_policy", intervention=intervention.id, refused=refused
            )
        await self.keep()
        await self.adaptation_requests.publish(
            AdaptationRequest(
                intervention_id=intervention.id,
                trigger=intervention.reason[:64],
                pain_level=round(intervention.episode.pain_at_open, 6),
                context={
                    "origin": intervention.origin,
                    "episode_trigger": intervention.episode.trigger,
                    "policy": f"{record.policy_type} v{record.version}" if record else None,
                    "refused": refused,
                },
            ),
            cause=cause,
            vsm_id=intervention.vsm_id,
        )
        metrics = self.metrics
        vsm_id, trigger = metrics.vsm_ids(intervention.vsm_id), intervention.episode.trigger
        metrics.interventions.labels(vsm_id, metrics.reasons(trigger)).inc()
        log.info("intervened", intervention=intervention.id, vsm_id=intervention.vsm_id)

    async def resolve(self, intervention: Intervention, now: datetime) -> None:
        """Announce the end of the episode; the throttle it set is lifted once healthy."""
        opened_at = intervention.episode.opened_at
        intervention.resolved = await self.resolved.publish(
            InterventionResolved(
                intervention_id=intervention.id,
                opened_at=opened_at,
                lasted_s=max(0.0, (now - opened_at).total_seconds()),
                escalation_level=intervention.escalation_level,
            ),
            routing_key=intervention_key("resolved", intervention.vsm_id),
            cause=intervention.opened or intervention.cause,
            vsm_id=intervention.vsm_id,
        )
        self.metrics.resolved.labels(self.metrics.vsm_ids(intervention.vsm_id)).inc()
        log.info("intervention_resolved", intervention=intervention.id, vsm_id=intervention.vsm_id)

    def healthy(self, vsm_id: str, target: str, now: datetime) -> bool:
        """Whether `target`'s last window failed at most the healthy share (or did no work)."""
        failures = self.s5.inputs(vsm_id).failures
        reading = fresh(failures.get(target), now, self.s5.freshness_s)
        return reading is None or reading.value <= HEALTHY_FAILURE_SHARE

    async def lift_throttle(self, intervention: Intervention, now: datetime) -> bool:
        """Lift the throttle of a resolved intervention whose target is healthy again."""
        target = intervention.throttled
        if target is None or intervention.resolved is None:
            return False
        if not self.healthy(intervention.vsm_id, target, now):
            return False
        current = self.journal.store.latest(intervention.vsm_id, "throttle")
        candidate = lift(target, current, f"intervention {intervention.id} resolved")
        intervention.throttled = None
        if candidate is None:
            return True
        try:
            await self.journal.adopt(
                intervention.vsm_id,
                candidate.policy_type,
                candidate.document,
                source="rules",
                reason=candidate.rationale,
                cause=intervention.resolved,
                intervention_id=intervention.id,
            )
        except PolicyRejected as refused:  # e.g. held for a person: the clock goes on
            log.info("throttle_lift_held", intervention=intervention.id, reason=refused.message)
        return True

    async def escalate(self, intervention: Intervention, now: datetime) -> None:
        """Up to the parent viable system (if any) and to operators, one level more."""
        level = intervention.escalation_level + 1
        feeling = self.s5.feeling(intervention.vsm_id)
        cause: Envelope[Any] = intervention.cause
        parent = interventions.parent_of(intervention.vsm_id)
        if parent is not None:
            await self.escalations.publish(
                Escalation(
                    intervention_id=intervention.id,
                    from_vsm_id=intervention.vsm_id,
                    to_vsm_id=parent,
                    trigger=intervention.reason,
                    pain_level=round(feeling.pain, 6),
                    opened_at=intervention.episode.opened_at,
                    escalation_level=level,
                ),
                routing_key=escalation_key(parent),
                cause=cause,
                vsm_id=intervention.vsm_id,
                mandatory=False,  # the parent's S5 binds it (recursion, issue 5)
            )
            self.metrics.escalations.labels(
                self.metrics.vsm_ids(intervention.vsm_id), "parent"
            ).inc()
        alert_id = f"al-{uuid.uuid4().hex[:12]}"
        intervention.alert_ids.append(alert_id)
        severity = interventions.severity_of(level)
        await self.alerts.publish(
            OperatorAlert(
                alert_id=alert_id,
                intervention_id=intervention.id,
                severity=severity,
                title=f"{intervention.vsm_id}: {intervention.reason} unresolved",
                text=(
                    f"Pain {feeling.pain:.2f} since {intervention.episode.opened_at:%H:%M:%S} UTC "
                    f"(origin {intervention.origin}); policy "
                    f"{intervention.policy_type} v{intervention.policy_version}. "
                    f"Acknowledge alert {alert_id} to stop escalation."
                ),
                pain_level=round(feeling.pain, 6),
                escalation_level=level,
            ),
            routing_key=operator_alert_key(severity),
            cause=cause,
            vsm_id=intervention.vsm_id,
        )
        interventions.escalate(intervention, now)  # only once delivered: late rather than lost
        await self.keep()
        self.metrics.escalations.labels(
            self.metrics.vsm_ids(intervention.vsm_id), "operators"
        ).inc()
        log.warning("escalated", intervention=intervention.id, level=level, alert=alert_id)

    async def consider(self, envelope: Envelope[AdaptationProposal]) -> ProposalVerdict:
        """Accept S4's proposal as a policy version, or reject it with the reasons."""
        proposal = envelope.data
        try:
            record = await self.journal.adopt(
                envelope.vsm_id,
                proposal.policy_type,
                proposal.policy,
                source=f"s4:{proposal.kind}",
                reason=proposal.rationale,
                cause=envelope,
            )
        except PolicyRejected as rejected:
            verdict = ProposalVerdict(
                proposal_id=proposal.proposal_id,
                accepted=False,
                reasons=rejected.reasons,
                policy_type=proposal.policy_type,
            )
        else:
            verdict = ProposalVerdict(
                proposal_id=proposal.proposal_id,
                accepted=True,
                policy_type=record.policy_type,
                version=record.version,
            )
        await self.verdicts.publish(
            verdict,
            routing_key=verdict_key(verdict.accepted),
            cause=envelope,
            mandatory=False,  # S4 binds it when it wants verdicts; the policy log has the rest
        )
        return verdict
