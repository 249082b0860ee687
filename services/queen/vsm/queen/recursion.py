"""Recursion on the broker: spawn and retire children, policy down, alerts and viability up.

A child's S5 state lives in this queen under the child's `vsm_id` (its own levels,
interventions, policies and identity); S3 carves its budget; its inbox `vsm.meta.<id>`
takes what the parent sends down. Children report viability to the parent (an S1 unit of
the parent, in Beer's recursion) and their unresolved interventions arrive at the parent as
pain. Every step is a message, so a child in another release works the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import CarveBudget, ReleaseBudget
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.policy import PolicyRecord
from vsm.contract.recursion import (
    MetaSystemInfo,
    MetaSystemRetired,
    MetaSystemSpawned,
    PolicyDirective,
    SpawnMetaSystem,
    ViabilityReport,
    directive_key,
    report_key,
    tree_key,
)
from vsm.contract.system5 import Escalation
from vsm.kit.bus import Bus, RequestFailed
from vsm.queen.bridge import bridge_to_parent
from vsm.queen.inbox import Inbox
from vsm.queen.journal import PolicyJournal
from vsm.queen.meta import MetaTree, depth_of, parent_of
from vsm.queen.policies import PolicyRejected
from vsm.queen.system5 import System5
from vsm.queen.viability import Reading

log = structlog.get_logger("vsm.queen.recursion")
FLOWS_DOWN = frozenset({"governance", "adaptation", "throttle"})
"""Policy types a child inherits from its parent (identity and shares are its own)."""


class MetaSystems:
    def __init__(
        self,
        bus: Bus,
        s5: System5,
        journal: PolicyJournal,
        tree: MetaTree,
        parent_namespace: str | None = None,
    ) -> None:
        self.bus, self.s5, self.journal, self.tree = bus, s5, journal, tree
        self.parent_namespace = parent_namespace
        self.inboxes: dict[str, Inbox] = {}
        self.reported: dict[str, float | None] = {}
        self.spawned = bus.publisher(
            topology.RECURSIVE, MetaSystemSpawned, routing_key="spawned.<parent>"
        )
        self.retired = bus.publisher(
            topology.RECURSIVE, MetaSystemRetired, routing_key="retired.<parent>"
        )
        self.directives = bus.publisher(
            topology.RECURSIVE, PolicyDirective, routing_key="meta.<child>.policy"
        )
        self.reports = bus.publisher(
            topology.RECURSIVE, ViabilityReport, routing_key="report.<parent>"
        )
        self.pain = bus.publisher(topology.ALGEDONIC, AlgedonicSignal)
        journal.adopted.append(self.flow_down)

    @property
    def bridged(self) -> bool:
        return self.parent_namespace is not None

    async def start(self) -> None:
        """After replay: open the inbox of every child the log knows (and of this release's
        root when it is a child deployed on its own, joined to its parent's namespace)."""
        for vsm_id in self.tree.systems:
            await self._open_inbox(vsm_id)
        if self.parent_namespace is not None:
            await bridge_to_parent(self.bus, self.tree.root, self.parent_namespace)
            await self._open_inbox(self.tree.root)

    async def spawn(self, envelope: Envelope[SpawnMetaSystem]) -> MetaSystemInfo:
        info, _ = await self.spawn_child(envelope.data, envelope.vsm_id, envelope)
        return info

    async def spawn_child(
        self, request: SpawnMetaSystem, parent: str, envelope: Envelope[Any]
    ) -> tuple[MetaSystemInfo, Envelope[Any]]:
        """Spawn `request` under `parent`, caused by `envelope`: the child and its
        `MetaSystemSpawned` as sent (the cause of what follows from it)."""
        child = self.tree.check_spawn(parent, request.name)
        await self._control(CarveBudget(child=child, budget=request.budget), parent)
        identity = {
            "policy_type": "identity",
            "purpose": request.purpose,
            "values": request.values,
            "constraints": [c.model_dump(mode="json") for c in request.constraints],
        }
        try:
            await self.journal.adopt(
                child,
                "identity",
                identity,
                source="operator",
                reason=f"spawned by {parent}",
                cause=envelope,
            )
        except PolicyRejected:
            await self._control(ReleaseBudget(child=child), parent)
            raise
        info = MetaSystemInfo(
            vsm_id=child,
            parent=parent,
            purpose=request.purpose,
            budget=request.budget,
            depth=depth_of(child),
            spawned_at=datetime.now(UTC),
        )
        event = MetaSystemSpawned(meta_system=info)
        async with self.journal.writing():
            sent = await self.spawned.publish(
                event, routing_key=tree_key("spawned", parent), cause=envelope, vsm_id=child
            )
            self.tree.apply(event)
        await self._open_inbox(child)
        log.info("meta_system_spawned", vsm_id=child, parent=parent)
        return info, sent

    async def retire(self, envelope: Envelope[Any], vsm_id: str) -> MetaSystemInfo:
        info, _ = await self.retire_child(envelope, vsm_id)
        return info

    async def retire_child(
        self, envelope: Envelope[Any], vsm_id: str
    ) -> tuple[MetaSystemInfo, Envelope[Any]]:
        """Retire a child, caused by `envelope`: it and its `MetaSystemRetired` as sent."""
        info = self.tree.check_retire(vsm_id)
        await self._control(ReleaseBudget(child=vsm_id), info.parent)
        event = MetaSystemRetired(vsm_id=vsm_id, parent=info.parent, retired_at=datetime.now(UTC))
        async with self.journal.writing():
            sent = await self.retired.publish(
                event, routing_key=tree_key("retired", info.parent), cause=envelope, vsm_id=vsm_id
            )
            self.tree.apply(event)
        await self._close_inbox(vsm_id)
        self.s5.forget(vsm_id)
        log.info("meta_system_retired", vsm_id=vsm_id)
        return info, sent

    async def _control(self, body: CarveBudget | ReleaseBudget, vsm_id: str) -> None:
        try:
            await self.bus.request(
                "control",
                "budget." + ("carve" if isinstance(body, CarveBudget) else "release"),
                body,
                vsm_id=vsm_id,
            )
        except RequestFailed as failed:
            raise Refused(failed.reply.code, failed.reply.message) from failed

    # Down: policy -----------------------------------------------------------------------
    async def flow_down(self, record: PolicyRecord, cause: Envelope[Any]) -> None:
        if record.policy_type not in FLOWS_DOWN:
            return
        for child in self.tree.children_of(record.vsm_id):
            await self.directives.publish(
                PolicyDirective(record=record),
                routing_key=directive_key(child.vsm_id),
                cause=cause,
                vsm_id=child.vsm_id,
            )

    async def _open_inbox(self, vsm_id: str) -> None:
        async def directive(envelope: Envelope[PolicyDirective]) -> None:
            await self.inherit(vsm_id, envelope)

        inbox = Inbox(self.bus, vsm_id, directive)
        await inbox.open()
        self.inboxes[vsm_id] = inbox

    async def _close_inbox(self, vsm_id: str) -> None:
        inbox = self.inboxes.pop(vsm_id, None)
        await (inbox or Inbox(self.bus, vsm_id, self.inherit_nothing)).close(delete=True)

    async def inherit_nothing(self, _: Any) -> None:
        """The handler of an inbox only opened to be deleted."""

    async def inherit(self, child: str, envelope: Envelope[PolicyDirective]) -> None:
        """Adopt the parent's policy as the child's own, unless the child's identity forbids it."""
        record = envelope.data.record
        try:
            await self.journal.adopt(
                child,
                record.policy_type,
                record.policy.model_dump(mode="json"),
                source="parent",
                reason=f"from {record.vsm_id} {record.policy_type} v{record.version}",
                cause=envelope,
            )
        except PolicyRejected as refused:
            log.warning(
                "directive_refused", vsm_id=child, code=refused.code, reasons=refused.reasons
            )

    # Up: escalations and viability ------------------------------------------------------
    async def escalated(self, envelope: Envelope[Escalation]) -> None:
        """A child's unresolved intervention is pain of the parent."""
        escalation = envelope.data
        await self.pain.publish(
            AlgedonicSignal(
                kind="pain",
                intensity=escalation.pain_level,
                origin=f"meta/{escalation.from_vsm_id}",
                reason="child_escalation",
                episode=escalation.intervention_id,
                context={"child": escalation.from_vsm_id, "level": escalation.escalation_level},
            ),
            cause=envelope,
            vsm_id=escalation.to_vsm_id,
        )

    def reported_viability(self, envelope: Envelope[ViabilityReport]) -> None:
        report = envelope.data
        self.reported[report.vsm_id] = report.score
        parent = parent_of(report.vsm_id)
        if parent is not None and report.score is not None:
            self.s5.inputs(parent).s1[f"meta:{report.vsm_id}"] = Reading(
                report.score, envelope.time
            )

    async def report_up(self, now: datetime) -> None:
        """Each child's viability to its parent; this release's root too when it is a child."""
        reporting = [(c.vsm_id, c.parent) for c in self.tree.systems.values()]
        root_parent = parent_of(self.tree.root)
        if self.bridged and root_parent is not None:
            reporting.append((self.tree.root, root_parent))
        for vsm_id, parent in reporting:
            viability = self.s5.viability(vsm_id, now)
            feeling = self.s5.feeling(vsm_id)
            await self.reports.publish(
                ViabilityReport(
                    vsm_id=vsm_id,
                    score=viability.score,
                    coverage=viability.coverage,
                    pain=round(min(1.0, feeling.pain), 6),
                    open_interventions=len(self.s5.open_interventions(vsm_id)),
                ),
                routing_key=report_key(parent),
                vsm_id=vsm_id,
            )
