"""The policy store's durability: a RabbitMQ stream bound to `vsm.policy`, read at start.

Every change is one `PolicyChanged` published on `vsm.policy`; the broker confirms it only
once the stream (and every other bound queue) has it, so broadcast and persistence are one
act. The meta-system tree is kept in the same log (its events are bound into the stream too).
Every `VSM_LOG_SNAPSHOT_EVERY` changes (and at start-up) S5 appends a `PolicyLogSnapshot`,
the versions it keeps and the tree, written under the lock every change is written under, so
it misses none before it. At start-up S5 writes a `PolicyStoreOpened` marker straight to the
stream and reads it from the last snapshot up to that marker (`vsm.kit.snapshots`). An entry
that does not verify or cannot be read stops the start-up, naming the log and the offset
(`vsm.kit.eventlog`): S5 never runs on a store rebuilt without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.policy import Policy, PolicyChanged, PolicyRecord, PolicyStoreOpened
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned, PolicyLogSnapshot
from vsm.kit.bus import Bus
from vsm.kit.snapshots import SnapshotLog
from vsm.kit.streams import Entry
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
        self,
        bus: Bus,
        store: PolicyStore,
        tree: MetaTree,
        metrics: Metrics,
        instance: str,
        *,
        snapshot_every: int = 1000,
        snapshot_interval_s: float = 3600.0,
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
        self.applied = 0
        self.changes = bus.publisher(topology.POLICY, PolicyChanged)
        log_entries = (PolicyChanged, MetaSystemSpawned, MetaSystemRetired, PolicyStoreOpened)
        bus.interface.receives(topology.SYSTEM5_POLICIES, *log_entries)
        bus.interface.sends_to_queue(topology.SYSTEM5_POLICIES, PolicyStoreOpened)
        self.log = SnapshotLog(
            bus,
            topology.SYSTEM5_POLICIES,
            PolicyLogSnapshot,
            apply=self._apply,
            snapshot=self._snapshot,
            restore=self._restore,
            mark=lambda keys: PolicyStoreOpened(instance=instance, live_keys=keys),
            every=snapshot_every,
            interval_s=snapshot_interval_s,
            timeout_s=REPLAY_TIMEOUT_S,
            items=lambda: sum(map(len, store.versions.values())),
        )

    async def replay(self) -> int:
        """Rebuild the store from the stream's last snapshot and the entries after it; the
        number of versions read after the snapshot."""
        await self.log.open()
        self.opened.set()
        log.info("policy_store_replayed", versions=self.applied, entries=self.log.read)
        return self.applied

    async def close(self) -> None:
        await self.log.stop()

    async def _apply(self, entry: Entry, _: bool) -> None:
        data = entry.envelope.data
        if isinstance(data, PolicyChanged):
            self.applied += self.store.apply(data.record)
        elif isinstance(data, MetaSystemSpawned | MetaSystemRetired):
            self.tree.apply(data)

    def _snapshot(self, _: int | None) -> PolicyLogSnapshot:
        return PolicyLogSnapshot(
            records=self.store.records(), meta_systems=list(self.tree.systems.values())
        )

    def _restore(self, snapshot: PolicyLogSnapshot) -> None:
        self.store.restore(snapshot.records)
        self.tree.systems = {info.vsm_id: info for info in snapshot.meta_systems}

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Write one change to the log (and apply it) inside: no snapshot is taken meanwhile,
        and one follows every `VSM_LOG_SNAPSHOT_EVERY` changes."""
        async with self.log.lock:
            yield
            await self.log.changed()

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
        async with self.writing():
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
