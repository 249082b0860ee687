"""What an organisation file may say: the models behind `docs/organisation.schema.json`.

One viable system (the root unless `vsm_id` says otherwise) with its identity, budget and
agents, and child meta-systems declared the same way, recursively. Agents are known by
name: `count: 3` of name `w` declares `w-1`, `w-2` and `w-3`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.envelope import VsmId
from vsm.contract.policy import IdentityConstraint
from vsm.contract.rules import MAX_RULES, RuleDeclaration

AgentName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")]
"""Agent names of the registry, leaving room for the `-<n>` a count adds."""
SystemName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
"""One segment of a `vsm_id` path."""
Rules = Annotated[
    list[RuleDeclaration] | None,
    Field(
        default=None,
        max_length=MAX_RULES,
        description="The system's own S4 rules (docs/rules.md); absent: left as they are.",
    ),
]


class _Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Declaration):
    """S5's identity policy: why the system exists and the constraints no policy may break."""

    purpose: str = Field(min_length=1, max_length=1024)
    values: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=32
    )
    constraints: list[IdentityConstraint] = Field(default_factory=list, max_length=64)


class Budget(_Declaration):
    """What S3 may allocate to this system's agents (and carve out for its meta-systems)."""

    concurrency_slots: int = Field(ge=0, le=100_000)
    llm_tokens_per_min: int = Field(ge=0, le=100_000_000)
    memory_mb: int = Field(ge=0, le=10_000_000)


class Agent(_Declaration):
    """An S1 agent, or `count` alike ones, named `<name>-1` .. `<name>-<count>`."""

    name: AgentName
    type: str = Field(min_length=1, max_length=32, examples=["worker", "sensor", "api"])
    config: dict[str, Any] = Field(
        default_factory=dict, description="Checked by the running system against the type."
    )
    count: int = Field(default=1, ge=1, le=999)

    def names(self) -> list[str]:
        if self.count == 1:
            return [self.name]
        return [f"{self.name}-{n}" for n in range(1, self.count + 1)]


class MetaSystem(_Declaration):
    """A child viable system: its own S3-S5, identity, agents, and budget carved from its parent."""

    name: SystemName
    identity: Identity
    budget: Budget
    agents: list[Agent] = Field(default_factory=list, max_length=1000)
    rules: Rules
    meta_systems: list[MetaSystem] = Field(default_factory=list, max_length=64)


class Organisation(_Declaration):
    """One viable system as an organisation file declares it."""

    version: Literal[1] = Field(default=1, description="The file format's version.")
    vsm_id: VsmId = "root"
    identity: Identity | None = None
    budget: Budget | None = None
    agents: list[Agent] = Field(default_factory=list, max_length=1000)
    rules: Rules
    meta_systems: list[MetaSystem] = Field(default_factory=list, max_length=64)


Declared = Organisation | MetaSystem
"""Either level of the tree: both have identity, budget, agents, rules and meta-systems."""
