"""What S3 says on `vsm.control`: documented publishers and the rules for each.

An allocation change is mandatory (operations and S2 act on it; an unroutable one fails the
handler rather than vanish). Audit reports and headroom are broadcasts: the requester has
its reply, and a missed headroom reading is replaced by the next one.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import (
    AUDIT_REPORT_KEY,
    HEADROOM_KEY,
    AllocationChanged,
    AuditFindings,
    ResourceHeadroom,
    allocation_key,
)
from vsm.contract.system5 import OperatorAlert, operator_alert_key
from vsm.control import spending
from vsm.control.changes import Change
from vsm.control.metrics import Metrics
from vsm.control.spending import Crossing, DaySpend
from vsm.kit.bus import Bus

BUDGET = "budget"
"""The reason of S3's pain about LLM spend, and the word its operator alerts start with."""


def pain(crossing: Crossing, spend: DaySpend, now: datetime) -> AlgedonicSignal:
    """S3's pain about LLM spend: reason `budget`, about an agent or the whole system."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    rate = spending.sustainable_rate_per_s(spend, crossing, (midnight - now).total_seconds())
    context: dict[str, Any] = {
        "spent_usd": round(crossing.spent_usd, 9),
        "cap_usd": crossing.cap_usd,
    }
    if crossing.agent_id is not None:
        context["agent_id"] = crossing.agent_id
    else:
        context["target"] = "*"  # the whole system is spending too fast
    if rate is not None:
        context["sustainable_rate_per_s"] = round(rate, 6)
    ratio = crossing.spent_usd / crossing.cap_usd if crossing.cap_usd else 1.0
    return AlgedonicSignal(
        kind="pain",
        intensity=round(min(1.0, ratio), 6),
        origin=f"control/{crossing.agent_id}" if crossing.agent_id else "control",
        reason=BUDGET,
        episode=f"{BUDGET}-{crossing.subject}-{spend.day.isoformat()}"[:128],
        context=context,
    )


class Outlets:
    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self.bus = bus
        self.metrics = metrics
        on = topology.CONTROL
        self.allocations = bus.publisher(
            on, AllocationChanged, routing_key=allocation_key("<agent_id>")
        )
        self.audits = bus.publisher(on, AuditFindings, routing_key=AUDIT_REPORT_KEY)
        self.headrooms = bus.publisher(on, ResourceHeadroom, routing_key=HEADROOM_KEY)
        self.pains = bus.publisher(
            topology.ALGEDONIC,
            AlgedonicSignal,
            description="Pain `budget`: an agent's share or a system's daily LLM cap is 80% spent.",
        )
        self.alerts = bus.publisher(
            topology.OPERATORS,
            OperatorAlert,
            routing_key=operator_alert_key("<severity>"),
            description="LLM budget 80% spent (warning) or exhausted (critical).",
        )

    async def spent(
        self, crossings: list[Crossing], changes: list[Change], spend: DaySpend, now: datetime
    ) -> None:
        """Pain for each crossing of 80%, the shares S3 moved (caused by the pain they answer,
        sent before it, so that S5's answer to the pain always comes after them), then alerts
        to operators (once a day per subject and level)."""
        pains = {
            crossing: self.bus.envelope(
                pain(crossing, spend, now), vsm_id=crossing.vsm_id, subject=crossing.agent_id
            )
            for crossing in crossings
            if crossing.level == "warning"
        }
        first = next(iter(pains.values()), None)
        await self.changed([replace(c, cause=first or c.cause) for c in changes])
        for envelope in pains.values():
            await self.bus.send(topology.ALGEDONIC, envelope)
        for crossing in crossings:
            if spending.alert_due(spend, crossing):
                await self.alert(crossing, pains.get(crossing))

    async def alert(self, crossing: Crossing, cause: Any) -> None:
        whose = (
            f"{crossing.agent_id} of {crossing.vsm_id}" if crossing.agent_id else crossing.vsm_id
        )
        what = "share of the LLM budget" if crossing.agent_id else "daily LLM cap"
        exhausted = crossing.level == "exhausted"
        severity = "critical" if exhausted else "warning"
        state = "exhausted: its LLM calls now fail" if exhausted else "80% spent"
        await self.alerts.publish(
            OperatorAlert(
                alert_id=f"al-{uuid.uuid4().hex[:12]}",
                intervention_id=f"{BUDGET}-{crossing.subject}"[:128],
                severity=severity,
                title=f"{whose}: {what} {state}"[:256],
                text=(
                    f"{crossing.spent_usd:.6f} of {crossing.cap_usd:g} USD spent today (UTC). "
                    "S3 moves shares from idle agents within the cap; S5 throttles. Raise the "
                    "budget with PUT /api/vsm/system/3/budget (llm_usd_per_day)."
                ),
                pain_level=1.0 if exhausted else round(min(1.0, spending.WARN_AT), 6),
                escalation_level=1,
            ),
            routing_key=operator_alert_key(severity),
            cause=cause,
            vsm_id=crossing.vsm_id,
        )

    async def changed(self, changes: list[Change]) -> None:
        for change in changes:
            await self.allocations.publish(
                change.message(),
                routing_key=allocation_key(change.agent_id),
                cause=change.cause,
                vsm_id=change.vsm_id,
                subject=change.agent_id,
            )
            self.metrics.allocation_changes.labels(
                self.metrics.vsm_ids(change.vsm_id), change.kind
            ).inc()

    async def audited(self, findings: AuditFindings, vsm_id: str, cause: Any) -> None:
        for agent in findings.agents:
            self.metrics.audits.labels(self.metrics.vsm_ids(vsm_id), agent.outcome).inc()
        await self.audits.publish(findings, cause=cause, vsm_id=vsm_id, mandatory=False)

    async def headroom(
        self, vsm_id: str, reading: ResourceHeadroom, headroom_usd: float | None
    ) -> None:
        self.metrics.budget_used(vsm_id, reading.budget, reading.allocated)
        self.metrics.llm_headroom_left(vsm_id, headroom_usd)
        await self.headrooms.publish(reading, vsm_id=vsm_id, mandatory=False)
