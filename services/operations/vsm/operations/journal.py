"""The registry log: events published on `vsm.s1.registry`, read from the last snapshot.

Every replica reads the log from its last `RegistrySnapshot` (the running agents) up to a
mark it wrote itself, then follows it (`vsm.kit.snapshots`): everything before the mark is
the registry as it stood. Events are applied one at a time, in stream order (a batch's
agents in its order). Every `VSM_LOG_SNAPSHOT_EVERY` agents the events read name (a batch
counts each of its agents; and at start-up) a replica appends a snapshot naming
the last entry it includes (`covers`) and the events of its own it applied before reading
them back (`ahead`): a reader restores it and applies the entries after `covers`, so an
event another replica wrote while the snapshot was on its way is not lost, and none is
applied twice. An entry that does not verify or cannot be read stops the start-up, naming
the log and the offset (`vsm.kit.eventlog`), since a registry rebuilt without it would be
wrong; one that arrives once caught up is logged as a security event and not applied.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import structlog

from vsm.contract.message import Message
from vsm.contract.operations import (
    REGISTRY_EVENTS,
    REGISTRY_LOG,
    RegistryMark,
    RegistrySnapshot,
    event_agent_ids,
)
from vsm.kit.bus import Bus
from vsm.kit.snapshots import SnapshotLog
from vsm.kit.streams import Entry

log = structlog.get_logger("vsm.operations.journal")

Apply = Callable[[str, Message, bool], Awaitable[None]]


class RegistryJournal:
    def __init__(
        self,
        bus: Bus,
        instance: str,
        apply: Apply,
        snapshot: Callable[[int | None], RegistrySnapshot],
        restore: Callable[[RegistrySnapshot], None],
        *,
        snapshot_every: int = 1000,
        snapshot_interval_s: float = 3600.0,
        items: Callable[[], int] = lambda: 0,
    ) -> None:
        self.bus = bus
        self.instance = instance
        self.apply = apply
        self.nonce = secrets.token_hex(8)
        bus.interface.receives(REGISTRY_LOG, *REGISTRY_EVENTS, RegistryMark)
        bus.interface.sends_to_queue(REGISTRY_LOG, RegistryMark)
        self.snapshot = snapshot
        self.restore = restore
        self.snapshot_every = snapshot_every
        self.snapshot_interval_s = snapshot_interval_s
        self.items = items
        self.log: SnapshotLog[RegistrySnapshot] | None = None

    async def start(self, timeout_s: float) -> None:
        """Read the log from its last snapshot; return once caught up (raise `RefusedEntry`
        for an entry that cannot be trusted, TimeoutError after `timeout_s`)."""
        self.log = SnapshotLog(
            self.bus,
            REGISTRY_LOG,
            RegistrySnapshot,
            apply=self._entry,
            snapshot=self.snapshot,
            restore=self.restore,
            mark=lambda keys: RegistryMark(
                instance=self.instance, nonce=self.nonce, live_keys=keys
            ),
            every=self.snapshot_every,
            interval_s=self.snapshot_interval_s,
            timeout_s=timeout_s,
            follow=True,
            items=self.items,
            weight=lambda event: max(1, len(event_agent_ids(event))),
        )
        entries = await self.log.open()
        log.info("registry_replayed", entries=entries)

    async def _entry(self, entry: Entry, live: bool) -> None:
        await self.apply(entry.envelope.id, entry.envelope.data, live)

    async def stop(self) -> None:
        if self.log is not None:
            await self.log.stop()
