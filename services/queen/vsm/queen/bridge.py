"""A child viable system deployed as its own release: its `vsm.recursive` joined to its parent's.

Both releases share one broker under different namespaces, so each has its own
`vsm.recursive`. Exchange-to-exchange bindings carry what recursion needs across: the
child's escalations and viability reports up (`escalation.<parent>`, `report.<parent>`),
the parent's directives for this child down (`meta.<child>.#`). Declared by the child's
queen at start-up; idempotent.
"""

from __future__ import annotations

from vsm.contract import topology
from vsm.contract.recursion import report_key
from vsm.contract.system5 import escalation_key
from vsm.kit.bus import Bus
from vsm.kit.names import Namespace
from vsm.queen.meta import parent_of


async def bridge_to_parent(bus: Bus, vsm_id: str, parent_namespace: str) -> None:
    parent = parent_of(vsm_id)
    if parent is None:
        raise ValueError(f"{vsm_id!r} is a root: it has no parent to bridge to")
    name = topology.RECURSIVE.name
    own, theirs = bus.namespace.name(name), Namespace(parent_namespace).name(name)
    for exchange in (own, theirs):
        await bus.declarations.exchange(exchange)
    for key in (escalation_key(parent), report_key(parent)):
        await bus.declarations.join(theirs, own, key)
    await bus.declarations.join(own, theirs, f"meta.{vsm_id}.#")
