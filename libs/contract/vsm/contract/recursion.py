"""Recursion: meta-systems (child viable systems) and what flows between parent and child.

A child is named by its `vsm_id`, its parent's plus one segment (`root/logistics`). Routing
on `vsm.recursive`: `MetaSystemSpawned` / `MetaSystemRetired` with key
`<spawned|retired>.<parent>`, `ViabilityReport` with key `report.<parent>` (child to parent),
`Escalation` with key `escalation.<parent>` (see system5), `PolicyDirective` with key
`meta.<child>.policy` into the child's queue `vsm.meta.<child>` (parent to child).
Spawning, retiring and listing are requests to `queen.*`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.control import Resources
from vsm.contract.envelope import VsmId
from vsm.contract.journal import LogSnapshot
from vsm.contract.message import Message
from vsm.contract.policy import IdentityConstraint, PolicyRecord, Text
from vsm.contract.topology import RECURSIVE, Binding, Queue

__all__ = [
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "SEGMENT_PATTERN",
    "MetaSystemDescription",
    "MetaSystemInfo",
    "MetaSystemQuery",
    "MetaSystemRetired",
    "MetaSystemSpawned",
    "MetaSystemTree",
    "PolicyDirective",
    "PolicyLogSnapshot",
    "RetireMetaSystem",
    "SpawnMetaSystem",
    "ViabilityReport",
    "directive_key",
    "meta_queue",
    "report_key",
    "tree_key",
]

MAX_DEPTH = 5
MAX_CHILDREN = 10
SEGMENT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"


def meta_queue(vsm_id: str) -> Queue:
    """A child's inbox: what its parent sends down (policy directives)."""
    return Queue(
        f"vsm.meta.{vsm_id}",
        (Binding(RECURSIVE, f"meta.{vsm_id}.#"),),
        f"What the parent of {vsm_id} sends down to it.",
    )


def directive_key(child: str) -> str:
    return f"meta.{child}.policy"


def report_key(parent: str) -> str:
    return f"report.{parent}"


def tree_key(event: str, parent: str) -> str:
    return f"{event}.{parent}"


class SpawnMetaSystem(Message):
    """`vsm_spawn_meta_system`: a child of the envelope's `vsm_id`, budget carved from it."""

    TYPE: ClassVar[str] = "vsm.s5.meta.spawn.v1"

    name: str = Field(pattern=SEGMENT_PATTERN, description="The child's segment of `vsm_id`.")
    purpose: Text
    values: list[Text] = Field(default_factory=list, max_length=32)
    constraints: list[IdentityConstraint] = Field(default_factory=list, max_length=64)
    budget: Resources


class RetireMetaSystem(Message):
    """Tear down a child (one without children of its own); its budget returns to the parent."""

    TYPE: ClassVar[str] = "vsm.s5.meta.retire.v1"

    vsm_id: VsmId


class MetaSystemQuery(Message):
    """The children of the envelope's `vsm_id` (request)."""

    TYPE: ClassVar[str] = "vsm.s5.meta.query.v1"


class MetaSystemInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vsm_id: str
    parent: str
    purpose: str
    budget: Resources
    depth: int
    children: list[str] = Field(default_factory=list)
    spawned_at: datetime
    viability: float | None = None


class MetaSystemDescription(Message):
    TYPE: ClassVar[str] = "vsm.s5.meta.v1"

    meta_system: MetaSystemInfo


class MetaSystemTree(Message):
    TYPE: ClassVar[str] = "vsm.s5.meta.tree.v1"

    vsm_id: str
    children: list[MetaSystemInfo]


class MetaSystemSpawned(Message):
    """A child exists (also S5's durable record of the tree, in its policy log)."""

    TYPE: ClassVar[str] = "vsm.s5.meta.spawned.v1"

    meta_system: MetaSystemInfo


class MetaSystemRetired(Message):
    TYPE: ClassVar[str] = "vsm.s5.meta.retired.v1"

    vsm_id: str
    parent: str
    retired_at: datetime


class ViabilityReport(Message):
    """A child's viability, sent to its parent each S5 tick (an S1 unit of the parent)."""

    TYPE: ClassVar[str] = "vsm.s5.viability-report.v1"

    vsm_id: str
    score: float | None = Field(default=None, ge=0, le=1)
    coverage: float = Field(ge=0, le=1)
    pain: float = Field(ge=0, le=1)
    open_interventions: int = Field(ge=0)


class PolicyDirective(Message):
    """Policy flowing down: the parent's new version, for the child to adopt (or refuse)."""

    TYPE: ClassVar[str] = "vsm.s5.policy-directive.v1"

    record: PolicyRecord


class PolicyLogSnapshot(LogSnapshot):
    """S5's live state written to its policy log every so many entries (and at start-up):
    the versions of every policy it keeps and the meta-system tree. A start-up reads the log
    from its last snapshot on (`vsm.kit.snapshots`), so replay is bounded by the live state,
    not by the history."""

    TYPE: ClassVar[str] = "vsm.s5.policy-log.snapshot.v1"

    records: list[PolicyRecord] = Field(
        default_factory=list,
        description="Every version kept, per viable system and policy type in version order "
        "(the latest ones: `POLICY_VERSIONS_KEPT`).",
    )
    meta_systems: list[MetaSystemInfo] = Field(default_factory=list)
