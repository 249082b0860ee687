"""The policy store's durability: a RabbitMQ stream bound to `vsm.policy`, replayed at start.

Every change is one `PolicyChanged` published on `vsm.policy`; the broker confirms it only
once the stream (and every other bound queue) has it, so broadcast and persistence are one
act. At start-up S5 writes a `PolicyStoreOpened` marker straight to the stream and reads
the stream from its first offset up to that marker: everything before it is the store.
The meta-system tree is kept in the same log (its events are bound into the stream too).
An entry whose signature does not verify stops the start-up (`vsm.kit.eventlog`): S5 never
runs on a store rebuilt without it. The writing and reading are the kit's (`vsm.kit.journal`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.policy import Policy, PolicyChanged, PolicyRecord, PolicyStoreOpened
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned
from vsm.kit.bus import Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.streams import Entry, LogReader
from vsm.queen.meta import MetaTree
from vsm.queen.metrics import Metrics
from vsm.queen.policies import PolicyRejected, PolicyStore, check_author

log = structlog.get_logger("vsm.queen.journal")
REPLAY_TIMEOUT_S = 120.0
Adopted = Callable[[PolicyRecord, Envelope[Any]], Awaitable[None]]


class Review(Protocol):
    """Holds back a policy that needs a person (raises `AwaitingApproval`), else returns."""

    async def __call__(
        self,
        vsm_id: str,
        policy: Policy,
        *,
        source: str,
        reason: str,
        cause: Envelope[Any] | None,
        intervention_id: str | None,
        causation: list[str],
    ) -> None: ...


def chain(cause: Envelope[Any] | None) -> list[str]:
    """The causation ids known from a cause envelope, oldest first."""
    if cause is None:
        return []
    return [cause.causation_id, cause.id] if cause.causation_id else [cause.id]


class PolicyJournal:
    def __init__(
        self, bus: Bus, store: PolicyStore, tree: MetaTree, metrics: Metrics, instance: str
    ) -> None:
        self.bus = bus
        self.store = store
        self.tree = tree
        self.adopted: list[Adopted] = []
        """Called after each adopted version, with the `PolicyChanged` envelope."""
        self.review: Review | None = None
        """Decision rights (`vsm.queen.proposals`): asked before any version is adopted."""
        self.metrics = metrics
        self.instance = instance
        self.opened = asyncio.Event()
        self._lock = asyncio.Lock()
        self.changes = bus.publisher(topology.POLICY, PolicyChanged)
        log_entries = (PolicyChanged, MetaSystemSpawned, MetaSystemRetired, PolicyStoreOpened)
        bus.interface.receives(topology.SYSTEM5_POLICIES, *log_entries)
        bus.interface.sends_to_queue(topology.SYSTEM5_POLICIES, PolicyStoreOpened)

    async def replay(self) -> int:
        """Rebuild the store from the stream; the number of versions read."""
        stream = topology.SYSTEM5_POLICIES
        opened = PolicyStoreOpened(instance=self.instance, live_keys=self.bus.live_key_ids())
        marker = self.bus.envelope(opened)
        reached = asyncio.Event()
        refused: list[RefusedEntry] = []
        applied = 0

        async def on_entry(entry: Entry) -> None:
            nonlocal applied
            data = entry.envelope.data
            if isinstance(data, PolicyChanged):
                applied += self.store.apply(data.record)
            elif isinstance(data, MetaSystemSpawned | MetaSystemRetired):
                self.tree.apply(data)
            elif isinstance(data, PolicyStoreOpened):  # the keys live from here on
                entry.opened(data.live_keys)
                if entry.envelope.id == marker.id:
                    reached.set()

        def on_refused(error: RefusedEntry) -> bool:  # a state without it would be wrong
            refused.append(error)
            reached.set()
            return True

        def unreadable(error: ValueError) -> None:
            log.warning("policy_log_entry_skipped", error=str(error)[:300])

        reader = LogReader(self.bus, stream, on_entry, unreadable=unreadable, refused=on_refused)
        await reader.start()
        await self.bus.append(stream, marker)
        try:
            await asyncio.wait_for(reached.wait(), REPLAY_TIMEOUT_S)
        finally:
            await reader.stop()
        if refused:
            raise refused[0]
        self.opened.set()
        log.info("policy_store_replayed", versions=applied)
        return applied

    async def adopt(
        self,
        vsm_id: str,
        policy_type: str,
        document: dict[str, Any],
        *,
        source: str,
        reason: str,
        cause: Envelope[Any] | None,
        intervention_id: str | None = None,
        causation: list[str] | None = None,
        approved: bool = False,
    ) -> PolicyRecord:
        """Check who wrote it (`check_author`), validate, hold it back for a person when the
        decision rights say so (`AwaitingApproval`, unless `approved` already), version,
        broadcast (and so persist) a policy; raise `PolicyRejected`.

        A document equal to the latest version changes nothing and returns that version, so
        storing the same policy twice (an operator's retry, an organisation file applied
        again, a rule firing again) makes no new version."""
        await self.opened.wait()
        async with self._lock:
            try:
                check_author(source, policy_type, vsm_id)
                policy = self.store.admit(vsm_id, policy_type, document)
            except PolicyRejected as rejected:
                kind = self.metrics.policy_types(policy_type)
                self.metrics.policy_rejections.labels(kind, rejected.code).inc()
                raise
            latest = self.store.latest(vsm_id, policy_type)
            if latest is not None and latest.policy == policy:
                log.info("policy_unchanged", vsm_id=vsm_id, policy_type=policy_type)
                return latest  # the same document again is no new version
            if self.review is not None and not approved:
                await self.review(
                    vsm_id,
                    policy,
                    source=source,
                    reason=reason,
                    cause=cause,
                    intervention_id=intervention_id,
                    causation=causation if causation is not None else chain(cause),
                )
            record = PolicyRecord(
                vsm_id=vsm_id,
                policy_type=policy.policy_type,
                version=self.store.next_version(vsm_id, policy_type),
                policy=policy,
                source=source,
                reason=reason,
                created_at=datetime.now(UTC),
                intervention_id=intervention_id,
                causation=causation if causation is not None else chain(cause),
            )
            changed = await self.changes.publish(
                PolicyChanged(record=record), cause=cause, vsm_id=vsm_id
            )
            self.store.apply(record)
        kind, author = self.metrics.policy_types(policy_type), source.split(":", maxsplit=1)[0]
        self.metrics.policy_changes.labels(kind, author).inc()
        log.info("policy_adopted", vsm_id=vsm_id, policy_type=policy_type, version=record.version)
        for follow in self.adopted:
            await follow(record, changed)
        return record
