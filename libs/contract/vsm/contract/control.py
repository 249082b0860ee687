"""S3 control: budgets, allocations and S3* audits.

Routing on `vsm.control`: `AllocationRequest` with key `request.allocation` (reply to
`reply_to`), `AllocationChanged` with key `allocation.<agent_id>.changed` (operations and S2
apply it; `vsm.control` is joined into `vsm.s1.commands` by `allocation.*.changed`, so it
reaches the agent through the agent's one route, `*.<agent_id>.*`), `AuditFindings` with key
`audit.report`, `ResourceHeadroom` with key `s3.headroom` (S5's viability). Budgets, audits
and S3's state are request/reply to `control.*`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.envelope import VsmId
from vsm.contract.message import Message
from vsm.contract.operations import AuditType
from vsm.contract.topology import JOINS

__all__ = [
    "ALLOCATIONS_KEY",
    "ALLOCATION_REQUEST_KEY",
    "AUDIT_REPORT_KEY",
    "HEADROOM_KEY",
    "RESOURCE_KINDS",
    "AccountRecord",
    "AgentAllocation",
    "AgentAudit",
    "AllocationChanged",
    "AllocationGrant",
    "AllocationRequest",
    "AuditCommission",
    "AuditFindings",
    "BudgetRecord",
    "CarveBudget",
    "DampingRecord",
    "Finding",
    "HeldRecord",
    "LlmSpend",
    "Preemption",
    "ReleaseBudget",
    "ResourceHeadroom",
    "Resources",
    "SetBudget",
    "SpendRecord",
    "System3Query",
    "System3Snapshot",
    "System3State",
    "ThrottleRecord",
    "allocation_key",
]

ALLOCATION_REQUEST_KEY = "request.allocation"
AUDIT_REPORT_KEY = "audit.report"
HEADROOM_KEY = "s3.headroom"
RESOURCE_KINDS: tuple[str, ...] = ("concurrency_slots", "llm_tokens_per_min", "memory_mb")


ALLOCATIONS_KEY = JOINS[0].routing_key
"""Every `allocation_key`: S2's binding, and the fixed join of `vsm.control` into
`vsm.s1.commands` (`topology.JOINS`)."""


def allocation_key(agent_id: str) -> str:
    """Routing key on `vsm.control` for a change of one agent's allocation: three words, so
    that, joined into `vsm.s1.commands`, it matches the agent's route `*.<agent_id>.*`."""
    return f"allocation.{agent_id}.changed"


class Resources(BaseModel):
    """An amount of each resource S3 budgets; negative or absurd amounts are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency_slots: int = Field(default=0, ge=0, le=100_000)
    llm_tokens_per_min: int = Field(default=0, ge=0, le=100_000_000)
    memory_mb: int = Field(default=0, ge=0, le=10_000_000)
    llm_usd_per_day: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="LLM spend per UTC day, in USD: a viable system's hard daily cap, or an "
        "agent's share of it (None: no USD budget).",
    )


class SetBudget(Message):
    """Set the budget of the viable system named by the envelope's `vsm_id` (request)."""

    TYPE: ClassVar[str] = "vsm.s3.budget.set.v1"

    budget: Resources


class CarveBudget(Message):
    """S5 spawning a child: carve `budget` for `child` out of the envelope's system (request)."""

    TYPE: ClassVar[str] = "vsm.s3.budget.carve.v1"

    child: VsmId
    budget: Resources


class ReleaseBudget(Message):
    """S5 retiring a child: its budget returns to the parent (request)."""

    TYPE: ClassVar[str] = "vsm.s3.budget.release.v1"

    child: VsmId


class AllocationRequest(Message):
    """`vsm_allocate_resources`: set one agent's allocation; conflicts resolved by priority."""

    TYPE: ClassVar[str] = "vsm.s3.allocation.request.v1"

    agent_id: str = Field(min_length=1, max_length=64)
    resources: Resources
    priority: int = Field(default=4, ge=0, le=9)
    reason: str = Field(default="requested", min_length=1, max_length=256)


class Preemption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    released: Resources


class AllocationGrant(Message):
    """S3's answer: what was granted (maybe less than asked), and whom it was taken from."""

    TYPE: ClassVar[str] = "vsm.s3.allocation.grant.v1"

    agent_id: str
    requested: Resources
    granted: Resources
    outcome: Literal["granted", "partial"]
    preempted: list[Preemption] = Field(default_factory=list)
    reason: str = ""


class AllocationChanged(Message):
    """An agent's allocation now; operations resizes the agent, S2 its dispatch capacity."""

    TYPE: ClassVar[str] = "vsm.s3.allocation.changed.v1"

    agent_id: str
    agent_type: str
    resources: Resources
    max_rate_per_s: float | None = Field(default=None, gt=0)
    reason: str = Field(max_length=512)
    policy: str | None = Field(default=None, description="`<type> v<version>` that caused it.")


class ResourceHeadroom(Message):
    """S3's unallocated share of the budget (the `s3_headroom` term of viability)."""

    TYPE: ClassVar[str] = "vsm.s3.headroom.v1"

    headroom: float = Field(ge=0, le=1)
    budget: Resources
    allocated: Resources


class AuditCommission(Message):
    """S3*: audit these agents (all known agents when None) straight through their queues."""

    TYPE: ClassVar[str] = "vsm.s3.audit.commission.v1"

    agent_ids: list[str] | None = Field(default=None, max_length=256)
    audit_type: AuditType = "resource_audit"
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class AgentAudit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    outcome: Literal["answered", "timeout"]
    report: dict[str, Any] = Field(default_factory=dict)


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    code: str = Field(description="e.g. `allocated_but_idle`, `saturated`, `failing`, `silent`.")
    detail: str


class AuditFindings(Message):
    """An S3* audit's report: per agent what it said, the findings and recommendations."""

    TYPE: ClassVar[str] = "vsm.s3.audit.findings.v1"

    audit_id: str
    trigger: Literal["requested", "scheduled"]
    audit_type: AuditType
    started_at: datetime
    agents: list[AgentAudit]
    findings: list[Finding]
    recommendations: list[str]


class LlmSpend(BaseModel):
    """A viable system's LLM spend against its daily cap, for the current UTC day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: str = Field(description="The UTC day, `YYYY-MM-DD`.")
    cap_usd: float | None = Field(
        description="The system's own cap: its budget less what children carved (None: no "
        "USD budget)."
    )
    spent_usd: float = Field(ge=0)
    headroom_usd: float | None = Field(description="`cap_usd - spent_usd`, never below 0.")
    shared_usd: float = Field(ge=0, description="What agents hold of the cap as their shares.")


class System3Query(Message):
    TYPE: ClassVar[str] = "vsm.s3.state.query.v1"


class AgentAllocation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    agent_type: str
    resources: Resources
    priority: int
    max_rate_per_s: float | None = None
    reason: str
    llm_spent_today_usd: float = Field(default=0.0, ge=0)


class System3State(Message):
    """`GET /api/vsm/system/3`: the budget, what is allocated to whom, children, audits."""

    TYPE: ClassVar[str] = "vsm.s3.state.v1"

    vsm_id: str
    budget: Resources
    allocated: Resources
    free: Resources
    headroom: float
    allocations: list[AgentAllocation]
    children: dict[str, Resources] = Field(default_factory=dict)
    damped: dict[str, datetime] = Field(
        default_factory=dict, description="Agent id -> end of S2's cool-down."
    )
    last_audit: AuditFindings | None = None
    llm: LlmSpend | None = None


# S3's journal (`vsm.system3.journal`) ------------------------------------------------------


class BudgetRecord(BaseModel):
    """A viable system's budget and what its children carved out of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str
    budget: Resources
    children: dict[str, Resources] = Field(default_factory=dict)


class AccountRecord(BaseModel):
    """One agent's allocation as S3 granted it (`base_slots`: without a throttle's cap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    agent_type: str
    vsm_id: str
    resources: Resources
    base_slots: int
    priority: int
    max_rate_per_s: float | None = None
    limited: bool = False
    slot_cap: int | None = None
    reason: str
    usd_share: float | None = None
    """Its share of the system's daily LLM cap (none in a journal of 0.1)."""


class ThrottleRecord(BaseModel):
    """A throttle policy that S3 lifts at `expires_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str
    expires_at: datetime
    policy: str


class HeldRecord(BaseModel):
    """What a policy wants for a damped agent, applied when its cool-down ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: AccountRecord
    kind: str
    reason: str
    policy: str


class DampingRecord(BaseModel):
    """S2 damps `subject` until `until`; `held` is the change S3 keeps for it meanwhile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str
    until: datetime | None = None
    held: HeldRecord | None = None


class SpendRecord(BaseModel):
    """The UTC day's LLM spend as S3 counted it, so that a restart forgets none of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    agents: dict[str, float] = Field(default_factory=dict)
    others: dict[str, float] = Field(default_factory=dict)
    """Viable system -> what its services' own calls and agents gone since spent."""
    calls: dict[str, int] = Field(default_factory=dict)
    over: list[str] = Field(default_factory=list)
    exhausted: list[str] = Field(default_factory=list)
    alerted: list[tuple[str, Literal["warning", "exhausted"]]] = Field(default_factory=list)


class System3Snapshot(Message):
    """S3's whole state of decisions, written to its journal after every change."""

    TYPE: ClassVar[str] = "vsm.s3.journal.snapshot.v1"

    budgets: list[BudgetRecord] = Field(default_factory=list)
    accounts: list[AccountRecord] = Field(default_factory=list)
    throttles: list[ThrottleRecord] = Field(default_factory=list)
    damping: list[DampingRecord] = Field(default_factory=list)
    spend: SpendRecord | None = None
    """The day's LLM spend (kept at S3's release tick; none in a journal of 0.1)."""
