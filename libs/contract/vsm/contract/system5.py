"""S5 beyond the policy store: escalation, operator alerts, decisions, synthesis, viability.

Routing: `OperatorAlert` on `vsm.operators` with key `alert.<severity>` (the telegram-gateway
delivers them), `AlertAcknowledgement` on `vsm.operators` with key `ack.alert`,
`Escalation` on `vsm.recursive` with key `escalation.<parent vsm_id>`, `ProposalVerdict` on
`vsm.intelligence` with key `adaptation.verdict.<accepted|rejected>`. The rest is
request/reply to `queen.*`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import Approval, ApprovalRequested
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.contract.policy import PolicyRecord

__all__ = [
    "ACK_KEY",
    "AlertAcknowledgement",
    "AlertSeverity",
    "AlgedonicState",
    "Decision",
    "DecisionRequest",
    "DecisionType",
    "EpisodeRecord",
    "Escalation",
    "InterventionOpened",
    "InterventionRecord",
    "InterventionResolved",
    "InterventionState",
    "OperatorAlert",
    "ProposalRecord",
    "ProposalVerdict",
    "SynthesisRequest",
    "SynthesisResult",
    "System5Query",
    "System5Snapshot",
    "System5State",
    "Trace",
    "TraceQuery",
    "TraceStep",
    "Viability",
    "ViabilityTerm",
    "escalation_key",
    "intervention_key",
    "operator_alert_key",
    "verdict_key",
]

ACK_KEY = "ack.alert"
AlertSeverity = Literal["warning", "critical"]


def operator_alert_key(severity: str) -> str:
    """Routing key on `vsm.operators` for an operator alert of `severity`."""
    return f"alert.{severity}"


def escalation_key(parent_vsm_id: str) -> str:
    """Routing key on `vsm.recursive` for an escalation to the parent viable system."""
    return f"escalation.{parent_vsm_id}"


def verdict_key(accepted: bool) -> str:
    """Routing key on `vsm.intelligence` for S5's verdict on an adaptation proposal."""
    return f"adaptation.verdict.{'accepted' if accepted else 'rejected'}"


class OperatorAlert(Message):
    """An intervention S5 could not resolve in time: people are asked to look (and ack)."""

    TYPE: ClassVar[str] = "vsm.s5.operator-alert.v1"

    alert_id: str = Field(min_length=1, max_length=128)
    intervention_id: str = Field(min_length=1, max_length=128)
    severity: AlertSeverity
    title: str = Field(min_length=1, max_length=256)
    text: str = Field(max_length=4096)
    pain_level: float = Field(ge=0, le=1)
    escalation_level: int = Field(ge=1)


class AlertAcknowledgement(Message):
    """An operator has seen the alert: S5 stops escalating its intervention."""

    TYPE: ClassVar[str] = "vsm.s5.alert-ack.v1"

    alert_id: str = Field(min_length=1, max_length=128)
    by: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=1024)


class Escalation(Message):
    """Sent to the parent viable system when an intervention stays unresolved."""

    TYPE: ClassVar[str] = "vsm.s5.escalation.v1"

    intervention_id: str = Field(min_length=1, max_length=128)
    from_vsm_id: str
    to_vsm_id: str
    trigger: str
    pain_level: float = Field(ge=0, le=1)
    opened_at: datetime
    escalation_level: int = Field(ge=1)


class ProposalVerdict(Message):
    """S5's answer to an S4 adaptation proposal: accepted as a policy version, or why not."""

    TYPE: ClassVar[str] = "vsm.s5.proposal-verdict.v1"

    proposal_id: str
    accepted: bool
    reasons: list[str] = Field(default_factory=list)
    policy_type: str
    version: int | None = None


# Decisions and synthesis (requests to `queen`) ----------------------------------------------

DecisionType = Literal[
    "intervention", "escalation", "adaptation", "resource_allocation", "policy_review"
]


class DecisionRequest(Message):
    TYPE: ClassVar[str] = "vsm.s5.decision.request.v1"

    decision_type: DecisionType
    context: dict[str, Any] = Field(default_factory=dict)


class Decision(Message):
    """S5's decision: what, why (each rule that fired), and how to carry it out."""

    TYPE: ClassVar[str] = "vsm.s5.decision.v1"

    decision_id: str
    decision_type: DecisionType
    decision: str
    reasoning: list[str]
    steps: list[str]
    confidence: float = Field(ge=0, le=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


class SynthesisRequest(Message):
    """Synthesise (and apply) a policy answering an anomaly."""

    TYPE: ClassVar[str] = "vsm.s5.synthesis.request.v1"

    anomaly_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    severity: float = Field(ge=0, le=1)
    context: dict[str, Any] = Field(default_factory=dict)


class SynthesisResult(Message):
    """What was applied and from where; `llm_outcome` says why the LLM was not used, if so."""

    TYPE: ClassVar[str] = "vsm.s5.synthesis.result.v1"

    applied: PolicyRecord | None
    source: str
    llm_outcome: Literal[
        "used", "not_configured", "error", "invalid_output", "refused", "awaiting_approval"
    ]
    llm_detail: str = ""
    rejected_reasons: list[str] = Field(default_factory=list)
    awaiting: Approval | None = Field(
        default=None, description="The proposal held for a person (nothing is applied yet)."
    )


# Viability and S5's state -------------------------------------------------------------------


class ViabilityTerm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    weight: float
    value: float | None = Field(description="0..1, None while not measured (unknown).")
    detail: str = ""


class Viability(BaseModel):
    """score = sum(weight * value) / sum(weight) over the known terms; coverage = known weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float | None
    coverage: float = Field(ge=0, le=1)
    terms: list[ViabilityTerm]
    threshold: float | None = Field(
        default=None, description="The score above which the system counts as viable."
    )
    viable: bool | None = None


class AlgedonicState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str
    pain: float
    pleasure: float
    signals: int
    episode_open: bool
    intervene_at: float | None = Field(
        default=None, description="Pain at which S5 opens an intervention."
    )
    resolve_below: float | None = Field(
        default=None, description="Pain below which the episode closes (hysteresis)."
    )


class InterventionState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intervention_id: str
    vsm_id: str
    trigger: str
    opened_at: datetime
    status: Literal["open", "resolved", "escalated", "acknowledged"]
    escalation_level: int
    policy_type: str | None
    policy_version: int | None
    causation: list[str]
    alert_ids: list[str] = Field(
        default_factory=list, description="Operator alerts raised for it, oldest first."
    )
    resolved_at: datetime | None = None
    opened_by: str | None = Field(
        default=None, description="The signal that opened it: where its causal chain starts."
    )


class System5Query(Message):
    TYPE: ClassVar[str] = "vsm.s5.state.query.v1"


class System5State(Message):
    """Everything S5 knows about the asking viable system, for people and dashboards."""

    TYPE: ClassVar[str] = "vsm.s5.state.v1"

    vsm_id: str
    viability: Viability
    algedonic: AlgedonicState
    interventions: list[InterventionState]
    policies: dict[str, int]
    identity: dict[str, Any] | None
    llm: str


# Interventions (on `vsm.interventions`) and the causal trail ---------------------------------


def intervention_key(event: Literal["opened", "resolved"], vsm_id: str) -> str:
    """Routing key on `vsm.interventions`."""
    return f"{event}.{vsm_id}"


class InterventionOpened(Message):
    """S5 opened an intervention for an episode of pain (caused by the signal that opened it)."""

    TYPE: ClassVar[str] = "vsm.s5.intervention.opened.v1"

    intervention_id: str
    trigger: str
    reason: str
    origin: str | None = None
    pain_level: float = Field(ge=0, le=1)
    signals: list[str] = Field(default_factory=list, description="Ids of the episode's signals.")


class InterventionResolved(Message):
    """The episode subsided: pain fell below the resolve level (hysteresis)."""

    TYPE: ClassVar[str] = "vsm.s5.intervention.resolved.v1"

    intervention_id: str
    opened_at: datetime
    lasted_s: float = Field(ge=0)
    escalation_level: int = Field(ge=0, description="How far it had escalated before.")


class TraceQuery(Message):
    """The causal chain a message belongs to: its causes up to the root, and what it caused."""

    TYPE: ClassVar[str] = "vsm.s5.trace.query.v1"

    message_id: str = Field(min_length=1, max_length=128)


class TraceStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: str
    source: str
    time: datetime
    vsm_id: str
    causation_id: str | None
    depth: int = Field(ge=0, description="0 for the root cause, +1 per causal step.")
    summary: str


class Trace(Message):
    TYPE: ClassVar[str] = "vsm.s5.trace.v1"

    message_id: str
    chain: list[TraceStep]
    text: str = Field(description="The chain as an indented, human-readable tree.")


MAX_KEPT = 1024
"""Open interventions (one per viable system at most) and pending approvals a snapshot holds."""


class EpisodeRecord(BaseModel):
    """The episode of pain an intervention answers, as it was when kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: str = Field(max_length=64)
    opened_at: datetime
    pain_at_open: float
    causes: list[str] = Field(default_factory=list, max_length=256)
    reasons: dict[str, int] = Field(default_factory=dict)
    origins: dict[str, int] = Field(default_factory=dict)
    sender_episodes: list[str] = Field(default_factory=list, max_length=256)


class InterventionRecord(BaseModel):
    """One intervention not yet resolved: its episode, the signal that opened it (the head of
    every message it causes), its escalation and the policy it applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intervention_id: str = Field(max_length=64)
    vsm_id: str = Field(max_length=256)
    status: Literal["open", "escalated", "acknowledged"]
    escalation_level: int = Field(ge=0)
    last_escalated_at: datetime | None = None
    alert_ids: list[str] = Field(default_factory=list, max_length=64)
    policy_type: str | None = Field(default=None, max_length=64)
    policy_version: int | None = None
    throttled: str | None = Field(default=None, max_length=256)
    episode: EpisodeRecord
    cause: Envelope[AlgedonicSignal]
    opened: Envelope[InterventionOpened] | None = None


class ProposalRecord(BaseModel):
    """One decision waiting for a person: the approval (its policy, requester and deadline),
    the chain behind it, and the `ApprovalRequested` that announced it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approval: Approval
    causation: list[str] = Field(default_factory=list, max_length=256)
    requested: Envelope[ApprovalRequested] | None = None


class System5Snapshot(Message):
    """S5's matters in hand, its journal's entry: the interventions not yet resolved and the
    approvals waiting for a person (policies are in the policy log; levels are felt again)."""

    TYPE: ClassVar[str] = "vsm.s5.journal.snapshot.v1"

    interventions: list[InterventionRecord] = Field(default_factory=list, max_length=MAX_KEPT)
    approvals: list[ProposalRecord] = Field(default_factory=list, max_length=MAX_KEPT)
