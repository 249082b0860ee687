"""The meta-system tree: which child viable systems exist, and the quotas that bound them.

A child's `vsm_id` is its parent's plus one segment. Quotas: depth at most `max_depth`
(the root is depth 0), at most `max_children` children per parent and `max_total`
meta-systems in all (depth and children alone would allow 111,110), no segment repeating an
ancestor's name (`root/a/b/a` would make `a` its own ancestor: refused as cyclic). Budgets
are S3's to check (carved from the parent's free budget). Pure data; events in, tree out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vsm.contract.errors import Refused
from vsm.contract.recursion import (
    MAX_CHILDREN,
    MAX_DEPTH,
    MetaSystemInfo,
    MetaSystemRetired,
    MetaSystemSpawned,
)


def depth_of(vsm_id: str) -> int:
    return vsm_id.count("/")


def parent_of(vsm_id: str) -> str | None:
    head, _, _ = vsm_id.rpartition("/")
    return head or None


@dataclass
class MetaTree:
    root: str = "root"
    systems: dict[str, MetaSystemInfo] = field(default_factory=dict)
    max_depth: int = MAX_DEPTH
    max_children: int = MAX_CHILDREN
    max_total: int = 100

    def exists(self, vsm_id: str) -> bool:
        return vsm_id == self.root or vsm_id in self.systems

    def children_of(self, vsm_id: str) -> list[MetaSystemInfo]:
        return sorted(
            (s for s in self.systems.values() if s.parent == vsm_id), key=lambda s: s.spawned_at
        )

    def check_spawn(self, parent: str, name: str) -> str:
        """The new child's `vsm_id`, or `Refused` with the quota it would break."""
        if not self.exists(parent):
            raise Refused("meta_system_not_found", f"no viable system {parent!r} to be a parent")
        child = f"{parent}/{name}"
        if name in parent.split("/"):
            raise Refused(
                "cyclic_vsm_id", f"{child!r} repeats its ancestor {name!r}: a system in itself"
            )
        if self.exists(child):
            raise Refused("meta_system_exists", f"{child!r} already exists")
        if depth_of(child) > self.max_depth:
            raise Refused(
                "quota_exceeded",
                f"{child!r} would be at depth {depth_of(child)} (META_MAX_DEPTH: {self.max_depth})",
            )
        if len(self.children_of(parent)) >= self.max_children:
            raise Refused(
                "quota_exceeded",
                f"{parent!r} already has {self.max_children} children (META_MAX_CHILDREN)",
            )
        if len(self.systems) >= self.max_total:
            raise Refused(
                "quota_exceeded",
                f"the tree already holds {self.max_total} meta-systems (META_MAX_TOTAL)",
            )
        return child

    def check_retire(self, vsm_id: str) -> MetaSystemInfo:
        info = self.systems.get(vsm_id)
        if info is None:
            raise Refused("meta_system_not_found", f"no meta-system {vsm_id!r}")
        if children := self.children_of(vsm_id):
            raise Refused(
                "has_children",
                f"{vsm_id!r} still has {len(children)} child(ren); retire them first",
            )
        return info

    def apply(self, event: MetaSystemSpawned | MetaSystemRetired) -> None:
        """Apply a logged event (idempotent: a replayed one changes nothing new)."""
        if isinstance(event, MetaSystemSpawned):
            self.systems[event.meta_system.vsm_id] = event.meta_system
        else:
            self.systems.pop(event.vsm_id, None)

    def view(self, vsm_id: str, viability: dict[str, float | None]) -> MetaSystemInfo:
        info = self.systems[vsm_id]
        return info.model_copy(
            update={
                "children": [c.vsm_id for c in self.children_of(vsm_id)],
                "viability": viability.get(vsm_id),
            }
        )
