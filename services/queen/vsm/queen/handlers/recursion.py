"""Meta-systems: children spawned, retired and listed on request; their escalations and
viability reports coming up.

Refusals are `Refused` (the kit answers their `ErrorReply`) with a stable code
(`meta_system_not_found`, `meta_system_exists`, `quota_exceeded`, `cyclic_vsm_id`,
`has_children`, `over_budget`), which the gateway turns into 404 / 409 / 422.
"""

from __future__ import annotations

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
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
from vsm.queen.recursion import MetaSystems

REQUESTS = topology.requests_queue("queen")


def register(bus: Bus, meta: MetaSystems) -> None:
    journal = meta.journal

    @bus.handle(topology.SYSTEM5_RECURSIVE, Escalation)
    async def on_child_escalation(envelope: Envelope[Escalation]) -> None:
        await meta.escalated(envelope)

    @bus.handle(topology.SYSTEM5_RECURSIVE, ViabilityReport)
    async def on_child_report(envelope: Envelope[ViabilityReport]) -> None:
        meta.reported_viability(envelope)

    @bus.handle(REQUESTS, SpawnMetaSystem)
    async def spawn_meta_system(envelope: Envelope[SpawnMetaSystem]) -> RabbitResponse:
        await journal.opened.wait()
        spawned = MetaSystemDescription(meta_system=await meta.spawn(envelope))
        return bus.reply(spawned, cause=envelope)

    @bus.handle(REQUESTS, RetireMetaSystem)
    async def retire_meta_system(envelope: Envelope[RetireMetaSystem]) -> RabbitResponse:
        await journal.opened.wait()
        retired = await meta.retire(envelope, envelope.data.vsm_id)
        return bus.reply(MetaSystemDescription(meta_system=retired), cause=envelope)

    @bus.handle(REQUESTS, MetaSystemQuery)
    async def meta_systems(envelope: Envelope[MetaSystemQuery]) -> RabbitResponse:
        await journal.opened.wait()
        tree, parent = meta.tree, envelope.vsm_id
        if not tree.exists(parent):
            raise Refused("meta_system_not_found", f"no viable system {parent!r}")
        children = [tree.view(c.vsm_id, meta.reported) for c in tree.children_of(parent)]
        return bus.reply(MetaSystemTree(vsm_id=parent, children=children), cause=envelope)
