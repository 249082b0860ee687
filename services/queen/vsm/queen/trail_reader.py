"""Reads the `vsm.trail` stream into the in-memory `Trail`, from a day back, for good.

Each queen replica reads the stream on its own (streams are read, not consumed), so any
replica can answer `trace`. An entry it cannot parse is skipped and logged, and so is one
whose signature does not verify (as a security event, `vsm.kit.eventlog`): the trail is a
record of what happened, kept for a day, not state, and one odd entry must not hide the
rest.
"""

from __future__ import annotations

import structlog

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction, AdaptationProposal, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import ApprovalDecided, ApprovalRequested
from vsm.contract.control import AllocationChanged, AuditFindings
from vsm.contract.coordination import CoordinationNote, Damping, OscillationDetected, Rescheduled
from vsm.contract.operations import AgentRehomed, RehomeAgents
from vsm.contract.policy import PolicyChanged
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned, PolicyDirective
from vsm.contract.system5 import (
    AlertAcknowledgement,
    Escalation,
    InterventionOpened,
    InterventionResolved,
    OperatorAlert,
    ProposalVerdict,
)
from vsm.kit.bus import Bus
from vsm.kit.streams import Entry, LogReader
from vsm.queen.trail import Trail

log = structlog.get_logger("vsm.queen.trail")
TRAIL_ENTRIES = (
    AlgedonicSignal,
    InterventionOpened,
    InterventionResolved,
    PolicyChanged,
    AllocationChanged,
    AuditFindings,
    OscillationDetected,
    Damping,
    Rescheduled,
    CoordinationNote,
    MetaSystemSpawned,
    MetaSystemRetired,
    Escalation,
    PolicyDirective,
    AdaptationRequest,
    AdaptationProposal,
    ProposalVerdict,
    AdaptationAction,
    OperatorAlert,
    AlertAcknowledgement,
    ApprovalRequested,
    ApprovalDecided,
    RehomeAgents,
    AgentRehomed,
)
"""What the trail's bindings carry (the stream keeps whatever arrives on them)."""


class TrailReader:
    def __init__(self, bus: Bus, trail: Trail) -> None:
        self.trail = trail
        self.reader = LogReader(bus, topology.TRAIL, self._entry, unreadable=self._unreadable)

    async def start(self) -> None:
        await self.reader.start()

    async def _entry(self, entry: Entry) -> None:
        self.trail.record(entry.envelope)

    @staticmethod
    def _unreadable(error: ValueError) -> None:
        log.warning("trail_entry_skipped", error=str(error)[:300])

    async def stop(self) -> None:
        await self.reader.stop()
