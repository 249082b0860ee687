"""What S2 says on `vsm.coordination`: documented publishers, each event counted.

Events (rescheduled, oscillation, damping, the index) are broadcasts, published without the
mandatory flag: nobody listening is no failure (S3's intake and the causal trail bind them
anyway). A note is mandatory: it is addressed, and undeliverable means the sender must know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vsm.contract import topology
from vsm.contract.coordination import (
    OSCILLATION_INDEX_KEY,
    QUEUE_PRESSURE_KEY,
    CoordinationNote,
    Damping,
    OscillationDetected,
    OscillationIndex,
    QueuePressure,
    Rescheduled,
    damping_key,
    note_key,
    oscillation_key,
    rescheduled_key,
)
from vsm.contract.envelope import Envelope
from vsm.contract.operations import AgentCommand, command_key
from vsm.coordinator.metrics import Metrics
from vsm.coordinator.oscillation import Flap
from vsm.kit.bus import Bus

AnyEnvelope = Envelope[Any]


class Outlets:
    def __init__(self, bus: Bus, metrics: Metrics, window_s: float) -> None:
        self.metrics = metrics
        self.window_s = window_s
        on = topology.COORDINATION
        self.notes = bus.publisher(on, CoordinationNote, routing_key=note_key("*"))
        self.rescheduled = bus.publisher(on, Rescheduled, routing_key=rescheduled_key("*"))
        self.oscillations = bus.publisher(on, OscillationDetected, routing_key=oscillation_key("*"))
        self.dampings = bus.publisher(on, Damping, routing_key=damping_key("*"))
        self.indices = bus.publisher(on, OscillationIndex, routing_key=OSCILLATION_INDEX_KEY)
        self.pressures = bus.publisher(on, QueuePressure, routing_key=QUEUE_PRESSURE_KEY)
        # Commands go out through `bus.ask`; this documents them in the AsyncAPI document.
        self.commands = bus.publisher(
            topology.S1_COMMANDS,
            AgentCommand,
            routing_key=command_key("*", "*", "*"),
            description="Scheduled S1 work, dispatched with `reply_to` (the answer frees a slot).",
        )

    async def note(self, note: CoordinationNote, cause: AnyEnvelope) -> AnyEnvelope:
        sent = await self.notes.publish(note, routing_key=note_key(note.to_agent), cause=cause)
        self.metrics.event(sent.vsm_id, "note")
        return sent

    async def reschedule(self, rescheduled: Rescheduled, vsm_id: str, cause: AnyEnvelope) -> None:
        await self.rescheduled.publish(
            rescheduled,
            routing_key=rescheduled_key(rescheduled.agent_id),
            cause=cause,
            vsm_id=vsm_id,
            mandatory=False,
        )
        self.metrics.event(vsm_id, "rescheduled")

    async def flap(self, flap: Flap, vsm_id: str, cause: AnyEnvelope) -> None:
        """The subject flaps: say so, and damp it until the cool-down ends."""
        key, subject = oscillation_key(flap.subject), flap.subject
        detected = OscillationDetected(
            subject=subject, signal=flap.signal, reversals=flap.reversals, window_s=self.window_s
        )
        await self.oscillations.publish(
            detected, routing_key=key, cause=cause, vsm_id=vsm_id, subject=subject, mandatory=False
        )
        self.metrics.event(vsm_id, "oscillation")
        damping = Damping(
            subject=subject,
            until=datetime.fromtimestamp(flap.until, UTC),
            reason=f"{flap.signal} reversed {flap.reversals} times within {self.window_s:g}s",
        )
        await self.dampings.publish(
            damping, routing_key=damping_key(subject), cause=cause, vsm_id=vsm_id, subject=subject
        )
        self.metrics.event(vsm_id, "damping")

    async def index(self, index: OscillationIndex, vsm_id: str) -> None:
        self.metrics.oscillation(vsm_id, index.index)
        await self.indices.publish(index, vsm_id=vsm_id, mandatory=False)

    async def pressure(self, pressure: QueuePressure, vsm_id: str) -> None:
        """The work waiting per agent type, for S4 (a missed reading is replaced by the next)."""
        await self.pressures.publish(pressure, vsm_id=vsm_id, mandatory=False)
