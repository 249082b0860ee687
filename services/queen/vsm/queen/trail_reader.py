"""Reads the `vsm.trail` stream into the in-memory `Trail`, from a day back, for good.

Each queen replica reads the stream on its own (streams are read, not consumed), so any
replica can answer `trace`. An entry it cannot parse is skipped and logged, and so is one
whose signature does not verify (as a security event, `vsm.kit.eventlog`): the trail is a
record of what happened, kept for a day, not state, and one odd entry must not hide the
rest.
"""

from __future__ import annotations

import contextlib

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction, AdaptationProposal, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import ApprovalDecided, ApprovalRequested
from vsm.contract.control import AllocationChanged, AuditFindings
from vsm.contract.coordination import CoordinationNote, Damping, OscillationDetected, Rescheduled
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
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.queen.trail import Trail

log = structlog.get_logger("vsm.queen.trail")
PREFETCH = 500
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
)
"""What the trail's bindings carry (the stream keeps whatever arrives on them)."""


class TrailReader:
    def __init__(self, bus: Bus, trail: Trail) -> None:
        self.bus = bus
        self.trail = trail
        self.reading = bus.log_reading(topology.TRAIL)
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        await self.bus.declare(topology.TRAIL)
        connection = await self.bus.broker.connect()
        self._channel = await connection.channel()
        await self._channel.set_qos(prefetch_count=PREFETCH)
        name = self.bus.namespace.name(topology.TRAIL.name)
        # declared (passively) through the robust channel, so the reading resumes after a
        # broker restart (from the first offset again: recording is idempotent)
        stream = await self._channel.declare_queue(name, passive=True)
        await stream.consume(self._entry, arguments={"x-stream-offset": "first"})

    async def _entry(self, message: AbstractIncomingMessage) -> None:
        try:
            if self.reading.check(message):
                self.trail.record(AnyEnvelope.validate_json(message.body))
        except RefusedEntry:
            pass  # logged as a security event by the check
        except ValueError as error:  # ValidationError is one
            log.warning("trail_entry_skipped", error=str(error)[:300])
        await message.ack()

    async def stop(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
