"""What S3 says on `vsm.control`: documented publishers and the rules for each.

An allocation change is mandatory (operations and S2 act on it; an unroutable one fails the
handler rather than vanish). Audit reports and headroom are broadcasts: the requester has
its reply, and a missed headroom reading is replaced by the next one.
"""

from __future__ import annotations

from typing import Any

from vsm.contract import topology
from vsm.contract.control import (
    AUDIT_REPORT_KEY,
    HEADROOM_KEY,
    AllocationChanged,
    AuditFindings,
    ResourceHeadroom,
    allocation_key,
)
from vsm.control.changes import Change
from vsm.control.metrics import Metrics
from vsm.kit.bus import Bus


class Outlets:
    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self.metrics = metrics
        on = topology.CONTROL
        self.allocations = bus.publisher(
            on, AllocationChanged, routing_key=allocation_key("<agent_id>")
        )
        self.audits = bus.publisher(on, AuditFindings, routing_key=AUDIT_REPORT_KEY)
        self.headrooms = bus.publisher(on, ResourceHeadroom, routing_key=HEADROOM_KEY)

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

    async def headroom(self, vsm_id: str, reading: ResourceHeadroom) -> None:
        self.metrics.budget_used(vsm_id, reading.budget, reading.allocated)
        await self.headrooms.publish(reading, vsm_id=vsm_id, mandatory=False)
