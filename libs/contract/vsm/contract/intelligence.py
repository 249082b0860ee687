"""S4 intelligence: observations in, scans, alerts, variety and meta-system need out.

S4 keeps one state per viable system (the root and every child S5 spawned), named by the
envelope's `vsm_id`; a request about a system S4 does not know is refused with
`meta_system_not_found`. Routing keys on `vsm.intelligence` (topic): `observation.<source>`
(readings anyone reports to S4), `scan.request` / `scan.result`, `alert.<severity>` (see
`adaptation.alert_key`), `alert.explained` (the LLM's follow-up to an alert). Request/reply
on `vsm.requests`: `intelligence.scan`, `intelligence.check_meta_system_need`,
`intelligence.status`, `intelligence.rules`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from vsm.contract.message import Message
from vsm.contract.rules import MAX_RULES, RuleDeclaration

__all__ = [
    "ALERT_EXPLAINED_KEY",
    "OBSERVATION_KEYS",
    "SCAN_REQUEST_KEY",
    "SCAN_RESULT_KEY",
    "AlertExplanation",
    "Code",
    "IntelligenceAlert",
    "MetaSystemNeed",
    "MetaSystemNeedQuery",
    "Observation",
    "RulesRecord",
    "ScanRequest",
    "ScanResult",
    "SeriesAnomaly",
    "Severity",
    "SourceStatus",
    "System4Rules",
    "System4Snapshot",
    "System4Status",
    "System4StatusQuery",
    "VarietyReport",
    "observation_key",
]

SCAN_REQUEST_KEY = "scan.request"
SCAN_RESULT_KEY = "scan.result"
ALERT_EXPLAINED_KEY = "alert.explained"
OBSERVATION_KEYS = "observation.#"
"""Binding pattern of S4's intake for observations (`observation.<source>`)."""

Severity = Literal["info", "warning", "critical"]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]
"""A stable identifier: letters, digits and `_ . : / -`."""


def observation_key(source: str) -> str:
    """Routing key on `vsm.intelligence` for an observation reported by `source`."""
    return f"observation.{source}"


class Observation(Message):
    """Something seen in the environment: an event of a type and, optionally, measured values.

    Every observation counts towards variety (by `event_type` and `source`); each entry of
    `values` is a series (`<source>.<name>`) watched for anomalies.
    """

    TYPE: ClassVar[str] = "vsm.s4.observation.v1"

    source: Code
    event_type: Code
    values: dict[Code, FiniteFloat] = Field(default_factory=dict, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)


class ScanRequest(Message):
    """Scan the environment now; on `scan.request` the result goes out on `scan.result`."""

    TYPE: ClassVar[str] = "vsm.s4.scan.request.v1"

    reason: str = Field(default="requested", min_length=1, max_length=256)


class VarietyReport(BaseModel):
    """Variety of what S4 saw over its window (Ashby): how many kinds of thing, how evenly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: float = Field(gt=0)
    events: int = Field(ge=0)
    distinct_types: int = Field(ge=0)
    distinct_sources: int = Field(ge=0)
    entropy_bits: float = Field(ge=0)
    normalised_entropy: float = Field(ge=0, le=1, description="entropy / log2(distinct_types)")
    event_rate: float = Field(ge=0, description="events per second over the window")
    anomalies: int = Field(ge=0, description="anomaly episodes begun within the window")
    top_types: dict[str, int] = Field(default_factory=dict)
    top_sources: dict[str, int] = Field(
        default_factory=dict, description="the sources of the most events: where variety comes from"
    )


class MetaSystemNeedQuery(Message):
    """Ask S4 whether the environment's variety calls for a meta-system (a new recursion)."""

    TYPE: ClassVar[str] = "vsm.s4.meta-system-need.query.v1"


class MetaSystemNeed(Message):
    """S4's scored recommendation, with every factor that went into the score."""

    TYPE: ClassVar[str] = "vsm.s4.meta-system-need.v1"

    recommended: bool
    score: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1, description="how much evidence the window holds")
    factors: dict[str, float]
    weights: dict[str, float]
    reasons: list[str] = Field(default_factory=list)
    variety: VarietyReport


class SeriesAnomaly(BaseModel):
    """An anomaly episode still open on one series."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    series: str
    since: datetime
    z: float


class ScanResult(Message):
    """What one scan found: variety, open anomalies, meta-system need and readiness."""

    TYPE: ClassVar[str] = "vsm.s4.scan.result.v1"

    scan_id: str = Field(min_length=1, max_length=128)
    trigger: Literal["scheduled", "requested"]
    reason: str = Field(max_length=256)
    series: int = Field(ge=0, description="series watched for anomalies")
    open_anomalies: list[SeriesAnomaly] = Field(default_factory=list)
    variety: VarietyReport
    meta_system_need: MetaSystemNeed
    readiness: float = Field(ge=0, le=1)
    readiness_factors: dict[str, float] = Field(default_factory=dict)
    findings: list[str] = Field(default_factory=list)


class IntelligenceAlert(Message):
    """S4 saw something S5 (and the operators) should know, with the evidence for it."""

    TYPE: ClassVar[str] = "vsm.s4.alert.v1"

    alert_id: str = Field(min_length=1, max_length=128)
    severity: Severity
    kind: Literal["anomaly", "variety", "rule"]
    summary: str = Field(min_length=1, max_length=1024)
    series: str | None = Field(default=None, max_length=256)
    source: str | None = Field(default=None, max_length=256)
    evidence: dict[str, Any]
    detected_at: datetime


class AlertExplanation(Message):
    """The LLM's reading of an alert (variety amplification): why, and what might come next."""

    TYPE: ClassVar[str] = "vsm.s4.alert.explained.v1"

    alert_id: str = Field(min_length=1, max_length=128)
    explanation: str = Field(min_length=1, max_length=8192)
    scenarios: list[str] = Field(default_factory=list, max_length=10)
    model: str = Field(min_length=1, max_length=128)


class System4StatusQuery(Message):
    """Ask S4 for its state (REST `GET /api/vsm/system/4`)."""

    TYPE: ClassVar[str] = "vsm.s4.status.query.v1"


class SourceStatus(BaseModel):
    """An outside source S4 polls for a system: how its polls went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    polls: int = Field(ge=0)
    failures: int = Field(ge=0)
    last_failure: str | None = Field(default=None, description="why the last failed poll failed")
    last_readings: dict[str, float] = Field(default_factory=dict)


class System4Rules(Message):
    """Declare a viable system's own rules (the organisation file's `rules`), replacing the
    ones it had; refused whole (`invalid_rules`, each problem with its field, line and
    column) when any rule does not compile. The reply is the system's `System4Status`."""

    TYPE: ClassVar[str] = "vsm.s4.rules.v1"

    rules: list[RuleDeclaration] = Field(default_factory=list, max_length=MAX_RULES)


class RulesRecord(BaseModel):
    """One viable system's own rules, as declared (`System4Rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str = Field(max_length=256)
    rules: list[RuleDeclaration] = Field(default_factory=list, max_length=MAX_RULES)


class System4Snapshot(Message):
    """S4's decisions, its journal's entry: every viable system's own rules (the standing
    ones are settings; what S4 sees is learnt again)."""

    TYPE: ClassVar[str] = "vsm.s4.journal.snapshot.v1"

    rules: list[RulesRecord] = Field(default_factory=list)


class System4Status(Message):
    """One viable system's S4: what it watches, what it sees now, its rules and sources,
    and whether the LLM amplifier is on."""

    TYPE: ClassVar[str] = "vsm.s4.status.v1"

    vsm_id: str = Field(default="root", max_length=256)
    series: int = Field(ge=0)
    open_anomalies: list[SeriesAnomaly] = Field(default_factory=list)
    alerts_raised: int = Field(ge=0)
    scans: int = Field(ge=0)
    last_scan_at: datetime | None = None
    variety: VarietyReport
    readiness: float = Field(ge=0, le=1)
    readiness_factors: dict[str, float] = Field(default_factory=dict)
    proposals: int = Field(ge=0)
    proposals_accepted: int = Field(ge=0, description="S5's verdicts S4 has heard")
    proposals_rejected: int = Field(ge=0)
    llm: Literal["enabled", "disabled"]
    rules: list[RuleDeclaration] = Field(
        default_factory=list, description="the system's own rules (its organisation file's)"
    )
    standing_rules: int = Field(default=0, ge=0, description="the operator's S4_RULES")
    rule_firings: int = Field(default=0, ge=0)
    sources: list[SourceStatus] = Field(default_factory=list)
