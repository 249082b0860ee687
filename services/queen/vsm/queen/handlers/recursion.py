"""Meta-systems: children spawned, retired and listed on request; their escalations and
viability reports coming up.

Refusals are `ErrorReply`s with a stable code (`meta_system_not_found`,
`meta_system_exists`, `quota_exceeded`, `cyclic_vsm_id`, `has_children`, `over_budget`),
which the gateway turns into 404 / 409 / 422.
"""

from __future__ import annotations

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.contract.recursion import (
    MetaSystemDescription,
    MetaSystemQuery,
    MetaSystemTree,
    RetireMetaSystem,
    SpawnMetaSystem,
    ViabilityReport,
)
from vsm.contract.system5 import Escalation
from vsm.kit.bus import Bus
from vsm.queen.handlers.answering import answering
from vsm.queen.meta import Refused
from vsm.queen.recursion import MetaSystems


def register(bus: Bus, meta: MetaSystems) -> None:
    journal = meta.journal

    @bus.handle(topology.SYSTEM5_RECURSIVE, Escalation)
    async def on_child_escalation(envelope: Envelope[Escalation]) -> None:
        await meta.escalated(envelope)

    @bus.handle(topology.SYSTEM5_RECURSIVE, ViabilityReport)
    async def on_child_report(envelope: Envelope[ViabilityReport]) -> None:
        meta.reported_viability(envelope)

    @answering(bus, SpawnMetaSystem)
    async def spawn_meta_system(envelope: Envelope[SpawnMetaSystem]) -> Message:
        await journal.opened.wait()
        return MetaSystemDescription(meta_system=await meta.spawn(envelope))

    @answering(bus, RetireMetaSystem)
    async def retire_meta_system(envelope: Envelope[RetireMetaSystem]) -> Message:
        await journal.opened.wait()
        return MetaSystemDescription(meta_system=await meta.retire(envelope, envelope.data.vsm_id))

    @answering(bus, MetaSystemQuery)
    async def meta_systems(envelope: Envelope[MetaSystemQuery]) -> Message:
        await journal.opened.wait()
        tree, parent = meta.tree, envelope.vsm_id
        if not tree.exists(parent):
            raise Refused("meta_system_not_found", f"no viable system {parent!r}")
        children = [tree.view(c.vsm_id, meta.reported) for c in tree.children_of(parent)]
        return MetaSystemTree(vsm_id=parent, children=children)
