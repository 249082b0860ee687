"""S5 policy: typed, versioned policy documents, identity, and the store's requests and replies.

Every policy document is one of the models below, told apart by `policy_type`; their JSON
schema is what S5 validates any policy against (people, S4 proposals and LLM proposals
alike). Identity is itself a policy type, so it is versioned and diffable like the rest.
Only `PolicyChanged` travels on `vsm.policy`; the rest is request/reply to `queen.*`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vsm.contract.message import Message

__all__ = [
    "POLICY_TYPES",
    "AdaptationPolicy",
    "ApprovalRule",
    "ConstraintOp",
    "GovernancePolicy",
    "IdentityConstraint",
    "IdentityPolicy",
    "IdentityQuery",
    "Name",
    "Policy",
    "PolicyChanged",
    "PolicyDiff",
    "PolicyDiffQuery",
    "PolicyList",
    "PolicyListQuery",
    "PolicyQuery",
    "PolicyRecord",
    "PolicyReply",
    "PolicyStoreOpened",
    "PolicySummary",
    "PolicyType",
    "ResourceAllocationPolicy",
    "Source",
    "StorePolicy",
    "Text",
    "ThrottleLimit",
    "ThrottlePolicy",
    "ValueChange",
    "entries",
]

PolicyType = Literal["governance", "adaptation", "resource_allocation", "identity", "throttle"]
POLICY_TYPES: tuple[str, ...] = (
    "governance",
    "adaptation",
    "resource_allocation",
    "identity",
    "throttle",
)
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/*-]+$")]
MappingT = TypeVar("MappingT", bound=dict[str, Any])


def entries(value: MappingT, least: int, most: int) -> MappingT:
    """`value`, unless it holds fewer than `least` or more than `most` entries."""
    if not least <= len(value) <= most:
        raise ValueError(f"should have {least} to {most} entries, not {len(value)}")
    return value


Text = Annotated[str, Field(min_length=1, max_length=1024)]
Source = Annotated[str, Field(pattern=r"^(rules|operator|parent|s4:[a-z]+|llm:[A-Za-z0-9_.:-]+)$")]
"""Who wrote a policy version: `rules`, `operator`, `parent` (inherited from the parent
viable system), `s4:<kind>` or `llm:<model>`."""


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Author = Literal["rules", "s4", "llm"]
"""Who, besides people, writes policy: S5's rules, S4's proposals, an LLM."""
DottedPath = Annotated[
    str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$")
]


class ApprovalRule(_Document):
    """Decisions a person must approve before they take effect: policies of `policy_type`
    written by one of `authors`; with `path` and `above`, only those where a number at
    `path` (dotted, `*` for every key or item) exceeds `above`, e.g. `limits.*.max_concurrency`
    above 100, or "spawning more than N agents" once a policy carries a count. Identity and
    governance always need an operator, so a rule names one of the other types (and so the
    LLM's tool, which offers governance, never names identity)."""

    policy_type: Literal["adaptation", "resource_allocation", "throttle"]
    authors: list[Author] = Field(min_length=1, max_length=3)
    path: DottedPath | None = None
    above: float | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _path_and_bound_together(self) -> ApprovalRule:
        if (self.path is None) != (self.above is None):
            raise ValueError("path and above go together: give both or neither")
        return self


class GovernancePolicy(_Document):
    """How the viable system governs itself: its principles and who decides what.

    Enforced by S5 (a decision needing approval waits as a pending proposal): a policy type
    whose `decision_rights` entry is `operator` needs an operator's approval whoever else
    writes it; `approvals` narrows that to authors and thresholds. Identity and governance
    written by anyone but an operator always need one."""

    policy_type: Literal["governance"]
    principles: list[Text] = Field(min_length=1, max_length=32)
    decision_rights: dict[Name, Literal["S1", "S2", "S3", "S4", "S5", "operator"]] = Field(
        default_factory=dict, description="Decision type -> the system (or operator) that owns it."
    )
    review_interval_s: float = Field(default=86_400, gt=0, le=31_536_000)
    approvals: list[ApprovalRule] = Field(
        default_factory=list, max_length=64, description="Decisions that need a person."
    )
    approval_deadline_s: float = Field(
        default=3600,
        ge=1,
        le=604_800,
        description="How long a proposal waits for a person; then it expires, rejected.",
    )


AdaptationMode = Literal["incremental", "transformational", "defensive", "expansive"]


class AdaptationPolicy(_Document):
    """How the organisation adapts now: a mode and concrete actions, with the reason.

    `actions` say it for people; the structured fields are what S3 carries out (see the
    README, "Adaptation policies are carried out"): `scale` (expansive: the number of agents
    each agent type should run), `isolate` (defensive: agents S2 stops dispatching to until
    they are healthy), `shed` (defensive: lanes whose waiting work is held back), `capacity`
    (incremental: a factor on the slots of an agent type or agent, within the budget),
    `overloading` (transformational: what a meta-system should take over), `delegate`
    (transformational: the agent types whose work moves to the new child, with their agents
    and lane) and `fold` (transformational: children to retire, their work returning).
    """

    policy_type: Literal["adaptation"]
    mode: AdaptationMode
    actions: list[Text] = Field(min_length=1, max_length=16)
    rationale: Text
    review_after_s: float = Field(default=3600, gt=0, le=2_592_000)
    scale: dict[Name, int] = Field(
        default_factory=dict,
        description="Agent type -> how many agents of it should run (expansive; at most 32).",
    )
    isolate: list[Name] = Field(default_factory=list, max_length=64)
    shed: list[Name] = Field(default_factory=list, max_length=64)
    capacity: dict[Name, float] = Field(default_factory=dict, description="At most 64.")
    overloading: list[Name] = Field(
        default_factory=list,
        max_length=8,
        description="What overloads the system (event or agent types; transformational).",
    )
    delegate: list[Name] = Field(
        default_factory=list,
        max_length=4,
        description="Agent types whose work, agents and lane move to a new child viable "
        "system that S5 spawns (transformational).",
    )
    fold: list[Name] = Field(
        default_factory=list,
        max_length=4,
        description="Child viable systems (`vsm_id`) S5 retires, their work returning to this "
        "system (transformational).",
    )

    # The sizes of mappings are checked here rather than by `Field(max_length=...)`, which
    # the REST API's OpenAPI generator would describe as an array.
    @field_validator("scale")
    @classmethod
    def _scale_size(cls, value: dict[str, int]) -> dict[str, int]:
        return entries(value, 0, 32)

    @field_validator("capacity")
    @classmethod
    def _capacity_size(cls, value: dict[str, float]) -> dict[str, float]:
        return entries(value, 0, 64)

    @model_validator(mode="after")
    def _bounded(self) -> AdaptationPolicy:
        if any(not 0 <= n <= 1000 for n in self.scale.values()):
            raise ValueError("scale: every agent count must be within 0..1000")
        if any(not 0.1 <= f <= 10 for f in self.capacity.values()):
            raise ValueError("capacity: every factor must be within 0.1..10")
        return self


class ResourceAllocationPolicy(_Document):
    """Shares of the total budget per S1 unit (or agent type); shares + reserve <= 1."""

    policy_type: Literal["resource_allocation"]
    shares: dict[Name, float] = Field(description="1 to 256 entries.")
    reserve: float = Field(default=0.1, ge=0, le=1, description="Held back for emergencies.")

    @field_validator("shares")
    @classmethod
    def _shares_size(cls, value: dict[str, float]) -> dict[str, float]:
        return entries(value, 1, 256)

    @model_validator(mode="after")
    def _fits_the_budget(self) -> ResourceAllocationPolicy:
        if any(not 0 <= share <= 1 for share in self.shares.values()):
            raise ValueError("every share must be within 0..1")
        if sum(self.shares.values()) + self.reserve > 1 + 1e-9:
            raise ValueError("shares plus reserve exceed the whole budget (1.0)")
        return self


class ThrottleLimit(_Document):
    target: Name = Field(description="An agent id, an agent type, an origin, or `*` for all.")
    max_rate_per_s: float = Field(gt=0, le=100_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    reason: Text = "limit"


class ThrottlePolicy(_Document):
    """Rate limits S2/S3 apply to S1 work; an empty list lifts every limit."""

    policy_type: Literal["throttle"]
    limits: list[ThrottleLimit] = Field(default_factory=list, max_length=256)
    expires_after_s: float | None = Field(default=None, gt=0, le=2_592_000)


ConstraintOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in"]


class IdentityConstraint(_Document):
    """A rule every policy of `policy_type` must keep: the value(s) at `path` `op` `value`.

    `path` is dotted, `*` matching every key or item, e.g. `limits.*.max_rate_per_s`.
    A path that matches nothing in a policy is no violation.
    """

    id: Name
    description: Text
    policy_type: PolicyType
    path: str = Field(
        min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$"
    )
    op: ConstraintOp
    value: Any

    @model_validator(mode="after")
    def _membership_needs_a_list(self) -> IdentityConstraint:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        return self


class IdentityPolicy(_Document):
    """Who this viable system is: purpose, values and the constraints no policy may break."""

    policy_type: Literal["identity"]
    purpose: Text
    values: list[Text] = Field(default_factory=list, max_length=32)
    constraints: list[IdentityConstraint] = Field(default_factory=list, max_length=64)


Policy = Annotated[
    GovernancePolicy
    | AdaptationPolicy
    | ResourceAllocationPolicy
    | IdentityPolicy
    | ThrottlePolicy,
    Field(discriminator="policy_type"),
]


class PolicyRecord(BaseModel):
    """One stored version of one policy type of one viable system, and how it came to be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str
    policy_type: PolicyType
    version: int = Field(ge=1)
    policy: Policy
    source: Source
    reason: str = Field(default="", max_length=4096)
    created_at: datetime
    intervention_id: str | None = None
    causation: list[str] = Field(
        default_factory=list, description="Ids of the messages that led here, oldest first."
    )


class PolicyChanged(Message):
    """Broadcast on `vsm.policy` for every new version; also S5's durable log (a stream)."""

    TYPE: ClassVar[str] = "vsm.s5.policy.changed.v1"

    record: PolicyRecord


class PolicyStoreOpened(Message):
    """Written straight to the policy log when S5 starts: replay reads up to this marker."""

    TYPE: ClassVar[str] = "vsm.s5.policy-store.opened.v1"

    instance: str
    live_keys: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="The ids of the keys that verified live traffic when this was written "
        "(none: unsigned, or an earlier release). An older key left out is retired from "
        "here on: a log entry it signs later is refused.",
    )


# Requests to `queen` and their replies ------------------------------------------------------


class StorePolicy(Message):
    """Store a new version of a policy; S5 validates it (schema, identity) before anything."""

    TYPE: ClassVar[str] = "vsm.s5.policy.store.v1"

    policy_type: PolicyType
    policy: dict[str, Any]
    reason: str = Field(default="", max_length=4096)


class PolicyQuery(Message):
    """Ask for one version of a policy (the latest when `version` is None)."""

    TYPE: ClassVar[str] = "vsm.s5.policy.query.v1"

    policy_type: PolicyType
    version: int | None = Field(default=None, ge=1)


class PolicyReply(Message):
    TYPE: ClassVar[str] = "vsm.s5.policy.v1"

    record: PolicyRecord


class PolicyListQuery(Message):
    TYPE: ClassVar[str] = "vsm.s5.policy.list-query.v1"


class PolicySummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_type: PolicyType
    latest_version: int
    source: str
    created_at: datetime


class PolicyList(Message):
    """The latest version of every policy type stored for the asking viable system."""

    TYPE: ClassVar[str] = "vsm.s5.policy.list.v1"

    vsm_id: str
    policies: list[PolicySummary]


class PolicyDiffQuery(Message):
    TYPE: ClassVar[str] = "vsm.s5.policy.diff-query.v1"

    policy_type: PolicyType
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1)


class ValueChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    before: Any
    after: Any


class PolicyDiff(Message):
    """Keys (dotted paths, list items by index) added, removed and changed between versions."""

    TYPE: ClassVar[str] = "vsm.s5.policy.diff.v1"

    policy_type: PolicyType
    from_version: int
    to_version: int
    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, ValueChange]


class IdentityQuery(Message):
    """Ask for the identity of the viable system the request's `vsm_id` names."""

    TYPE: ClassVar[str] = "vsm.s5.identity.query.v1"
