"""S2 coordination: fair-share scheduling of S1 work, notes between S1 units, anti-oscillation.

Routing on `vsm.coordination`: `WorkItem` with key `work.<lane>` (queue `vsm.system2.work`),
`CoordinationNote` with key `s1.<agent_id>.note` (`vsm.coordination` is joined into
`vsm.s1.commands` by `s1.*.note`, so it reaches the agent through its one route),
`OscillationDetected` with key `oscillation.<subject>`, `Damping` with key
`damping.<subject>` (S3 honours it), `Rescheduled` with key `rescheduled.<agent_id>`,
`OscillationIndex` with key `s2.oscillation` (S5's viability). `CoordinateMessage` and
`System2Query` are requests to `coordinator.*`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsm.contract.message import Message
from vsm.contract.operations import AGENT_ID_PATTERN, COMMAND_PATTERN
from vsm.contract.topology import JOINS

__all__ = [
    "AGENT_TYPE_PATTERN",
    "LANE_PATTERN",
    "NOTES_KEY",
    "OSCILLATION_INDEX_KEY",
    "QUEUE_PRESSURE_KEY",
    "CoordinateMessage",
    "CoordinationNote",
    "CoordinationReceipt",
    "Damping",
    "LaneRecord",
    "LaneState",
    "OscillationDetected",
    "OscillationIndex",
    "QueuePressure",
    "Rescheduled",
    "SubjectRecord",
    "System2Query",
    "System2Snapshot",
    "System2State",
    "TrendRecord",
    "TypePressure",
    "WorkItem",
    "damping_key",
    "note_key",
    "oscillation_key",
    "rescheduled_key",
    "work_key",
]

LANE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
AGENT_TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
OSCILLATION_INDEX_KEY = "s2.oscillation"
QUEUE_PRESSURE_KEY = "s2.pressure"


def work_key(lane: str) -> str:
    return f"work.{lane}"


NOTES_KEY = JOINS[1].routing_key
"""Every `note_key`: the fixed join of `vsm.coordination` into `vsm.s1.commands`
(`topology.JOINS`)."""


def note_key(agent_id: str) -> str:
    """Routing key on `vsm.coordination` of a note to one agent: three words, so that, joined
    into `vsm.s1.commands`, it matches the agent's route `*.<agent_id>.*`."""
    return f"s1.{agent_id}.note"


def oscillation_key(subject: str) -> str:
    return f"oscillation.{subject}"


def damping_key(subject: str) -> str:
    return f"damping.{subject}"


def rescheduled_key(agent_id: str) -> str:
    return f"rescheduled.{agent_id}"


class WorkItem(Message):
    """S1 work for S2 to schedule: a command for `agent_id` (or for any agent of
    `agent_type`, whichever has a free slot first), queued in `lane` at `weight`.

    The result is the agent's ordinary `CommandResult` (its results exchange, and the
    item's `reply_to` when it has one).
    """

    TYPE: ClassVar[str] = "vsm.s2.work.v1"

    lane: str = Field(pattern=LANE_PATTERN)
    weight: int = Field(default=1, ge=1, le=1000, description="Share of dispatches vs lanes.")
    agent_id: str | None = Field(default=None, pattern=AGENT_ID_PATTERN)
    agent_type: str | None = Field(default=None, pattern=AGENT_TYPE_PATTERN)
    command_id: str = Field(min_length=1, max_length=128)
    command_type: str = Field(pattern=COMMAND_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_address(self) -> WorkItem:
        if (self.agent_id is None) == (self.agent_type is None):
            raise ValueError("name exactly one of agent_id and agent_type")
        return self


class CoordinationNote(Message):
    """A message from one S1 unit to another, mediated by S2 (`vsm_coordinate_message`)."""

    TYPE: ClassVar[str] = "vsm.s2.note.v1"

    from_agent: str = Field(pattern=AGENT_ID_PATTERN)
    to_agent: str = Field(pattern=AGENT_ID_PATTERN)
    topic: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    content: dict[str, Any] = Field(default_factory=dict)


class CoordinateMessage(Message):
    """Ask S2 to deliver a note between two S1 units (request); answered with the receipt."""

    TYPE: ClassVar[str] = "vsm.s2.coordinate.v1"

    from_agent: str = Field(pattern=AGENT_ID_PATTERN)
    to_agent: str = Field(pattern=AGENT_ID_PATTERN)
    topic: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    content: dict[str, Any] = Field(default_factory=dict)


class CoordinationReceipt(Message):
    TYPE: ClassVar[str] = "vsm.s2.coordinate.receipt.v1"

    note_id: str
    from_agent: str
    to_agent: str
    delivered_at: datetime


class OscillationDetected(Message):
    """A subject (agent state or allocation, or an agent type's scale) changed sign too
    often within the window."""

    TYPE: ClassVar[str] = "vsm.s2.oscillation.v1"

    subject: str
    signal: Literal["allocation", "algedonic", "scale"]
    reversals: int = Field(ge=0)
    window_s: float = Field(gt=0)


class Damping(Message):
    """S2 damps a flapping subject: no allocation change for it until `until` (S3 obeys)."""

    TYPE: ClassVar[str] = "vsm.s2.damping.v1"

    subject: str
    until: datetime
    reason: str


class Rescheduled(Message):
    """S2 changed how much S1 work it dispatches to an agent (after an allocation change)."""

    TYPE: ClassVar[str] = "vsm.s2.rescheduled.v1"

    agent_id: str
    capacity: int = Field(ge=0)
    max_rate_per_s: float | None = None
    queued: int = Field(ge=0)


class OscillationIndex(Message):
    """0 = calm, 1 = every watched subject flapping; S5's `s2_stability` is 1 - index."""

    TYPE: ClassVar[str] = "vsm.s2.oscillation-index.v1"

    index: float = Field(ge=0, le=1)
    flapping: list[str] = Field(default_factory=list)


class TypePressure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: int = Field(ge=0, description="Running agents of the type.")
    queued: int = Field(ge=0, description="Work items waiting for agents of the type.")
    in_flight: int = Field(ge=0)


class QueuePressure(Message):
    """S2's periodic reading of the work waiting per agent type of one viable system, for
    S4 to see sustained queueing (key `s2.pressure`)."""

    TYPE: ClassVar[str] = "vsm.s2.queue-pressure.v1"

    types: dict[str, TypePressure] = Field(default_factory=dict, max_length=64)


class System2Query(Message):
    TYPE: ClassVar[str] = "vsm.s2.state.query.v1"


class LaneState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lane: str
    weight: int
    queued: int
    dispatched: int
    oldest_wait_s: float


class System2State(Message):
    """`GET /api/vsm/system/2`: lanes, capacity per agent, oscillation and damping."""

    TYPE: ClassVar[str] = "vsm.s2.state.v1"

    lanes: list[LaneState]
    capacity: dict[str, int]
    in_flight: dict[str, int]
    oscillation_index: float
    flapping: list[str]
    damped: dict[str, datetime]
    notes_delivered: int


# S2's journal (`vsm.system2.journal`) ------------------------------------------------------


class LaneRecord(BaseModel):
    """A lane's weight and its place in the fair share (`pass_value`: stride scheduling)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lane: str
    weight: int
    dispatched: int = 0
    pass_value: float = 0.0


class TrendRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: int = 0
    reversals: list[float] = Field(default_factory=list, description="Epoch seconds.")


class SubjectRecord(BaseModel):
    """A watched S1 unit: its recent moves, and the end of its damping (epoch seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str
    vsm_id: str
    last_seen: float
    trends: dict[str, TrendRecord] = Field(default_factory=dict)
    damped_until: float | None = None


class System2Snapshot(Message):
    """S2's state of decisions: lane weights, damping and the history behind it."""

    TYPE: ClassVar[str] = "vsm.s2.journal.snapshot.v1"

    lanes: list[LaneRecord] = Field(default_factory=list)
    floor: float = 0.0
    subjects: list[SubjectRecord] = Field(default_factory=list)
    notes_delivered: int = 0
