"""The registry log: events published on `vsm.s1.registry`, replayed from the stream.

A replica knows its replay has caught up when it reads back a mark it wrote itself after
it started reading: everything before the mark is the registry as it stood. Events are
applied one at a time, in stream order (`vsm.kit.streams`). An unreadable entry is logged,
counted and skipped (it stays in the log for inspection). An entry whose signature does not
verify (`vsm.kit.eventlog`) stops the start-up, since a registry rebuilt without it would be
wrong; one that arrives once caught up is logged as a security event and not applied.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import structlog

from vsm.contract.message import Message
from vsm.contract.operations import (
    REGISTRY_LOG,
    AgentCrashed,
    AgentRehomed,
    AgentSpawned,
    AgentTerminated,
    RegistryMark,
)
from vsm.kit.bus import Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.streams import Entry, LogReader

log = structlog.get_logger("vsm.operations.journal")

Apply = Callable[[str, Message, bool], Awaitable[None]]


class RegistryJournal:
    def __init__(self, bus: Bus, instance: str, apply: Apply) -> None:
        self.bus = bus
        self.instance = instance
        self.apply = apply
        self.nonce = secrets.token_hex(8)
        self.caught_up = asyncio.Event()
        events = (AgentSpawned, AgentTerminated, AgentCrashed, AgentRehomed, RegistryMark)
        bus.interface.receives(REGISTRY_LOG, *events)
        bus.interface.sends_to_queue(REGISTRY_LOG, RegistryMark)
        self.refused: RefusedEntry | None = None
        """The entry that stopped the replay, if one did."""
        self.skipped = 0
        self.reader = LogReader(
            bus, REGISTRY_LOG, self._entry, unreadable=self._unreadable, refused=self._refused
        )

    async def start(self, timeout_s: float) -> None:
        """Replay the whole log; return once caught up (or raise after `timeout_s`)."""
        await self.reader.start()
        live = self.bus.live_key_ids()
        mark = RegistryMark(instance=self.instance, nonce=self.nonce, live_keys=live)
        await self.bus.append(REGISTRY_LOG, self.bus.envelope(mark))
        async with asyncio.timeout(timeout_s):
            await self.caught_up.wait()
        if self.refused is not None:
            raise self.refused
        log.info("registry_replayed", skipped=self.skipped)

    async def _entry(self, entry: Entry) -> None:
        envelope = entry.envelope
        if isinstance(envelope.data, RegistryMark):  # the keys live from here on
            entry.opened(envelope.data.live_keys)
            if envelope.data.nonce == self.nonce:
                self.caught_up.set()
            return
        try:
            await self.apply(envelope.id, envelope.data, self.caught_up.is_set())
        except Exception as error:
            log.error("registry_apply_failed", error=repr(error), exc_info=error)

    def _refused(self, refused: RefusedEntry) -> bool:
        if self.caught_up.is_set():  # logged as a security event, not applied
            return False
        self.refused = refused  # start-up stops here
        self.caught_up.set()
        return True

    def _unreadable(self, error: ValueError) -> None:
        self.skipped += 1
        log.error("registry_entry_unreadable", error=str(error)[:500])

    async def stop(self) -> None:
        await self.reader.stop()
