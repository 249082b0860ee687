"""A log of changes with snapshots: a RabbitMQ stream whose start-up reading is bounded by
the live state, not by the history.

The log holds changes (a policy's new version, an agent spawned); every `every` changes
(`VSM_LOG_SNAPSHOT_EVERY`; an entry counts as the changes its `weight` says, a batch of
agents as many as it names), or a quarter as many entries as the live state holds items when
that is more (`ITEMS_PER_ENTRY`), every `interval_s` when anything changed
(`VSM_LOG_SNAPSHOT_INTERVAL_S`) and at every start-up after reading, the writer appends a
snapshot of the whole live state to the same log. The stream's retention
(`topology.LOG_RETENTION`, `VSM_LOG_*`) drops whole old segments only, never the one being
written, and keeps at least its size less one segment: many snapshot intervals, so the last
snapshot and every entry after it are always kept.

At start-up the reader writes its marker, finds the last snapshot before it
(`vsm.kit.journal.find_snapshot`: reading back from the marker, a little further each
time), gives it to `restore`, and reads on from there (or from just after the entry the
snapshot `covers`, for a log with several writers) up to its marker, applying each change.
Every entry is checked (`vsm.kit.eventlog`), strictly: one that does not verify or cannot be
read (bad JSON, an unknown type, a failing schema) stops the start-up with `RefusedEntry`,
naming the log and the offset. A `follow`ing reader goes on applying what others write; an
entry refused then is logged as a security event and not applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from vsm.contract import topology
from vsm.contract.journal import LogSnapshot
from vsm.contract.message import Message
from vsm.kit.bus import Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.journal import MARKERS, append, find_snapshot
from vsm.kit.streams import Entry, LogReader

__all__ = ["ITEMS_PER_ENTRY", "Apply", "SnapshotLog"]

log = structlog.get_logger("vsm.snapshots")

StateT = TypeVar("StateT", bound=LogSnapshot)
Apply = Callable[[Entry, bool], Awaitable[None]]
ITEMS_PER_ENTRY = 4
"""A snapshot of a live state of n items follows at least n / 4 entries after the last: its
writing costs at most about four entries' worth per entry, and a start-up reads at most one
snapshot and a quarter of the state's worth of entries after it."""
"""Apply one change read from the log; whether the reading has caught up (live)."""


class SnapshotLog(Generic[StateT]):
    """`stream`'s reading and snapshots: `snapshot(covers)` builds the live state (`covers`:
    the offset of the last entry read, for a follower; the kit adds the retired keys),
    `restore` takes it back, `mark` builds the reader's marker from the live keys, `items`
    counts the items of the live state, `weight` the changes an entry makes (one unless
    told)."""

    def __init__(
        self,
        bus: Bus,
        stream: topology.Queue,
        state_type: type[StateT],
        *,
        apply: Apply,
        snapshot: Callable[[int | None], StateT],
        restore: Callable[[StateT], None],
        mark: Callable[[list[str]], Message],
        every: int,
        interval_s: float,
        timeout_s: float,
        follow: bool = False,
        items: Callable[[], int] = lambda: 0,
        weight: Callable[[Message], int] = lambda _: 1,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.state_type = state_type
        self.apply = apply
        self.snapshot = snapshot
        self.restore = restore
        self.mark = mark
        self.every = every
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.follow = follow
        self.items = items
        """How many items (agents, policy versions) the live state holds."""
        self.weight = weight
        """How many changes an entry counts as (a batch of agents: one per agent)."""
        self.lock = asyncio.Lock()
        """Held while a snapshot is written; a single writer holds it while it writes a change
        and counts it (`changed`), so that no snapshot misses a change before it."""
        self.since = 0
        """Changes since the last snapshot (read or written)."""
        self.read = 0
        """Entries read at start-up, from the last snapshot to the marker."""
        self.snapshots = 0
        """Snapshots written."""
        self.offset: int | None = None
        """The offset of the last entry read."""
        self.caught_up = asyncio.Event()
        self._mark = ""
        self._refused: RefusedEntry | None = None
        self._reader: LogReader | None = None
        self._timer: asyncio.Task[None] | None = None
        bus.interface.sends_to_queue(stream, state_type)
        bus.interface.receives(stream, state_type)

    async def open(self) -> int:
        """Read the log from its last snapshot up to a marker written now (`RefusedEntry` for
        an entry that cannot be trusted, TimeoutError after `timeout_s`), then snapshot what
        changed since; the entries read."""
        await self.bus.declare(self.stream)
        marker = await append(self.bus, self.stream, self.mark(self.bus.live_key_ids()))
        self._mark = marker.id
        last = await find_snapshot(
            self.bus, self.stream, self.state_type, marker.id, timeout_s=self.timeout_s
        )
        start: int | str = "first"
        if last is not None:
            self.restore(last.state)
            covered = last.state.covers
            start = covered + 1 if covered is not None else (last.offset or 0)
        self._reader = LogReader(
            self.bus,
            self.stream,
            self._entry,
            unreadable=_never,
            refused=self._refused_entry,
            start=start,
            strict=True,
        )
        await self._reader.start()
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.caught_up.wait()
        finally:
            if not self.follow or self._refused is not None:
                await self.stop()
        if self._refused is not None:
            raise self._refused
        log.info(
            "log_read",
            stream=self.stream.name,
            snapshot=None if last is None else last.offset,
            start=start,
            entries=self.read,
        )
        # The next start reads from here: signed with the key live now (a log needs a
        # retired key no longer than its writer's next start), naming the keys retired now.
        async with self.lock:
            await self._write()
        self._timer = asyncio.create_task(self._tick(), name=f"snapshot {self.stream.name}")
        return self.read

    async def _entry(self, entry: Entry) -> None:
        self.offset = entry.offset
        data = entry.envelope.data
        live = self.caught_up.is_set()
        if not live:
            self.read += 1
        if isinstance(data, MARKERS):  # the keys live from here on
            entry.opened(data.live_keys)
            if entry.envelope.id == self._mark:
                self.caught_up.set()
            return
        if isinstance(data, self.state_type):  # another writer's: nothing new
            entry.retired(data.retired_keys)
            self.since = 0
            return
        try:
            await self.apply(entry, live)
        except Exception as error:
            log.error("log_entry_failed", stream=self.stream.name, error=repr(error))
        self.since += self.weight(data)
        if live and self._due():
            async with self.lock:
                await self._try_write()

    def _refused_entry(self, refused: RefusedEntry) -> bool:
        if self.caught_up.is_set():  # logged as a security event, not applied
            return False
        self._refused = refused  # the start-up stops here
        self.caught_up.set()
        return True

    async def changed(self) -> None:
        """Count one change written (by a single writer, holding `lock`), and snapshot the
        live state when it is the `every`th (a snapshot that fails is logged, and tried again
        at the next change: the change itself is made)."""
        self.since += 1
        if self._due():
            await self._try_write()

    def _due(self) -> bool:
        return self.since >= self.every and self.since * ITEMS_PER_ENTRY >= self.items()

    async def _write(self) -> None:
        state = self.snapshot(self.offset)
        retired = self.bus.log_only_key_ids()
        await append(self.bus, self.stream, state.model_copy(update={"retired_keys": retired}))
        self.since = 0
        self.snapshots += 1

    async def _try_write(self) -> None:
        try:
            await self._write()
        except Exception as error:  # the broker away: tried again at the next occasion
            log.warning("log_snapshot_failed", stream=self.stream.name, error=repr(error))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            async with self.lock:
                if self.since:
                    await self._try_write()

    async def stop(self) -> None:
        """Stop following the log and writing snapshots by time."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None


def _never(error: ValueError) -> None:  # a strict reader refuses an unreadable entry
    raise error
