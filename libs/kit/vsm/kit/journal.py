"""A service's decisions kept on the broker: a journal, a RabbitMQ stream of its own.

Each entry is a snapshot of the whole state of decisions, written (and confirmed by the
broker) after every decision and before it is answered or announced, so a restart, even a
SIGKILL, forgets nothing decided (a change recorded elsewhere too, e.g. an agent in S1's
registry, may wait for the service's next `keep()`: `later`).

Whole snapshots rather than changes: the states kept this way are small (budgets, grants,
lane weights, damping), so the last entry alone is the state, replay reads a handful of
entries whatever the history, and the stream's retention (by size,
`topology.JOURNAL_RETENTION`) can drop old entries without ever losing the state.

At start-up the service writes a `JournalMark` straight to its journal, learns the mark's
offset, and reads back from a little before it up to it, further back only when that span
holds no snapshot; the last snapshot before the mark is the state, and is written again
(signed with the key live now). Every entry read is checked like the other logs'
(`vsm.kit.eventlog`): one from the last snapshot on that does not verify, or cannot be read,
stops the start-up with an error naming the log, the offset and what to do; one before it
is logged as a security event and changes nothing.

`service_journal` is a service's journal as its settings name it (its instance, how long the
read-back may take). `append` writes an entry straight to a log (through `Bus.append`) and
`read_log` reads a log from an offset up to a mark its reader wrote, for a journal's start-up
(where `vsm.kit.streams.LogReader` reads a log from its first entry and follows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.journal import JournalMark, LogSnapshot
from vsm.contract.message import Message
from vsm.contract.operations import RegistryMark
from vsm.contract.policy import PolicyStoreOpened
from vsm.kit.bus import Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.streams import Entry, LogReader

__all__ = [
    "FIRST_SPAN",
    "MARKERS",
    "READ_PREFETCH",
    "JournalSettings",
    "OnEntry",
    "OnRefused",
    "Snapshot",
    "StateJournal",
    "StateT",
    "append",
    "find_snapshot",
    "log",
    "read_log",
    "service_journal",
]

log = structlog.get_logger("vsm.journal")
StateT = TypeVar("StateT", bound=Message)
OnEntry = Callable[[int | None, Envelope[Any]], None]
OnRefused = Callable[[int | None, RefusedEntry], None]
READ_PREFETCH = 500
FIRST_SPAN = 8
"""Entries before the mark read first. Each start writes its mark and then the snapshot it
read, so the last snapshot is among them unless that many starts in a row failed between
the two."""
MARKERS = (JournalMark, PolicyStoreOpened, RegistryMark)


async def append(bus: Bus, stream: topology.Queue, body: Message) -> Envelope[Any]:
    """Write `body` in a new envelope straight to `stream` (`Bus.append`: signed for it,
    confirmed); the envelope."""
    envelope = bus.envelope(body)
    await bus.append(stream, envelope)
    return envelope


async def read_log(
    bus: Bus,
    stream: topology.Queue,
    *,
    until: str,
    on_entry: OnEntry,
    start: int | str = "first",
    timeout_s: float,
    on_refused: OnRefused | None = None,
) -> None:
    """Read `stream` from `start` (an offset, `first` or `last`) up to the entry whose id is
    `until`, in order, through a `LogReader`: each entry is checked (a disowned one is passed
    over, a marker names the keys live from there on) and given to `on_entry` with its offset.
    Raises `RefusedEntry` for an entry that does not verify or cannot be read, or gives it
    to `on_refused` and reads on; TimeoutError when `until` is not reached in `timeout_s`."""
    reached = asyncio.Event()
    failed: list[RefusedEntry] = []

    async def entry(found: Entry) -> None:
        if reached.is_set():
            return
        data = found.envelope.data
        if isinstance(data, MARKERS):
            found.opened(data.live_keys)
        elif isinstance(data, LogSnapshot):
            found.retired(data.retired_keys)
        on_entry(found.offset, found.envelope)
        if found.envelope.id == until:
            reached.set()

    def refused(error: RefusedEntry) -> bool:
        if on_refused is not None:
            on_refused(error.offset, error)
            return False
        failed.append(error)  # nothing after it is read
        reached.set()
        return True

    def unreadable(error: ValueError) -> None:  # not called: a strict reader refuses it
        raise error

    reader = LogReader(
        bus, stream, entry, unreadable=unreadable, refused=refused, start=start, strict=True
    )
    await reader.start()
    try:
        async with asyncio.timeout(timeout_s):
            await reached.wait()
    finally:
        await reader.stop()
    if failed:
        raise failed[0]


@dataclass(frozen=True)
class Snapshot(Generic[StateT]):
    """The last snapshot of a log before a mark, and where it is."""

    state: StateT
    offset: int | None


async def find_snapshot(
    bus: Bus, stream: topology.Queue, state_type: type[StateT], mark: str, *, timeout_s: float
) -> Snapshot[StateT] | None:
    """The last `state_type` entry of `stream` before the entry whose id is `mark` (written
    by the caller): the mark's offset is learnt first (reading from the last chunk), then the
    log is read from a little before it up to it, further back (eight times as far each time)
    only when that span holds no snapshot. None for a log without one; `RefusedEntry` when
    the broker's retention has dropped the log's start and no snapshot is left, or for an
    entry after the snapshot that does not verify or cannot be read."""
    tail = await _offset_of(bus, stream, mark, timeout_s)
    span = FIRST_SPAN
    while True:
        start = 0 if tail is None else max(0, tail - span)
        found, first = await _last_snapshot(
            bus, stream, state_type, mark, start=start, timeout_s=timeout_s
        )
        if found is not None or start == 0:
            break
        span *= 8
    if found is None and first not in (None, 0):
        raise RefusedEntry(
            f"log {stream.name} holds no snapshot from offset {first} (where the "
            "broker's retention now starts it) to the start-up mark: the state is lost; "
            "restore the stream or start again with a new one"
        )
    return found


async def _offset_of(bus: Bus, stream: topology.Queue, mark: str, timeout_s: float) -> int | None:
    offsets: dict[str, int | None] = {}
    await read_log(
        bus,
        stream,
        until=mark,
        on_entry=lambda offset, envelope: offsets.__setitem__(envelope.id, offset),
        start="last",
        timeout_s=timeout_s,
        on_refused=lambda *_: None,  # judged by the reading that follows
    )
    return offsets.get(mark)


async def _last_snapshot(
    bus: Bus,
    stream: topology.Queue,
    state_type: type[StateT],
    mark: str,
    *,
    start: int,
    timeout_s: float,
) -> tuple[Snapshot[StateT] | None, int | None]:
    """The last snapshot from `start` to the mark, and the first offset read. An entry
    refused before that snapshot is passed over (logged as a security event: it changes
    nothing the snapshot says); one after it stops the start-up."""
    found: list[Snapshot[StateT]] = []
    first: list[int | None] = []
    refused: list[RefusedEntry] = []

    def on_entry(offset: int | None, envelope: Envelope[Any]) -> None:
        if not first:
            first.append(offset)
        if (offset is None or offset >= start) and isinstance(envelope.data, state_type):
            found[:] = [Snapshot(envelope.data, offset)]
            refused.clear()

    def on_refused(offset: int | None, entry: RefusedEntry) -> None:
        if not first:
            first.append(offset)
        refused.append(entry)

    await read_log(
        bus,
        stream,
        until=mark,
        on_entry=on_entry,
        start=start,
        timeout_s=timeout_s,
        on_refused=on_refused,
    )
    if refused:
        raise refused[0]
    return (found[0] if found else None), (first[0] if first else None)


class StateJournal(Generic[StateT]):
    """The journal of one service's state (`state_type` snapshots, built by `snapshot`)."""

    def __init__(
        self,
        bus: Bus,
        stream: topology.Queue,
        state_type: type[StateT],
        snapshot: Callable[[], StateT],
        *,
        instance: str,
        timeout_s: float,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.state_type = state_type
        self.snapshot = snapshot
        self.instance = instance
        self.timeout_s = timeout_s
        self.opened = asyncio.Event()
        """Set once the state is read back: nothing may change it before."""
        self.written = 0
        self.pending = False
        """A change to keep at the next `keep()`, which nothing waits for (`later`)."""
        self._last: StateT | None = None
        self._lock = asyncio.Lock()
        bus.interface.sends_to_queue(stream, state_type, JournalMark)
        bus.interface.receives(stream, state_type, JournalMark)

    async def open(self, restore: Callable[[StateT], None]) -> StateT | None:
        """Give the last snapshot written to `restore` (nothing for a new journal), then let
        changes be kept; the snapshot, or None."""
        await self.bus.declare(self.stream)
        mark = await append(
            self.bus,
            self.stream,
            JournalMark(instance=self.instance, live_keys=self.bus.live_key_ids()),
        )
        last = await find_snapshot(
            self.bus, self.stream, self.state_type, mark.id, timeout_s=self.timeout_s
        )
        found = None if last is None else last.state
        if found is not None:
            restore(found)
            # Written again, signed with the key live now: a journal needs a retired key for
            # no longer than its service's next start.
            await append(self.bus, self.stream, found)
        self._last = found
        self.opened.set()
        offset = None if last is None else last.offset
        log.info("journal_read", stream=self.stream.name, found=found is not None, at=offset)
        return found

    def later(self) -> None:
        """A change that can wait for the next `keep()` (the caller's rhythm decides when)."""
        self.pending = True

    async def keep(self) -> bool:
        """Write the state as it is now, unless it is what was written last; whether it was.
        Raises when the broker does not confirm it (the caller's change then fails too)."""
        await self.opened.wait()
        async with self._lock:
            self.pending = False
            state = self.snapshot()
            if state == self._last:
                return False
            await append(self.bus, self.stream, state)
            self._last = state
            self.written += 1
            return True


class JournalSettings(Protocol):
    """What a service's settings say of its journal: the instance that writes its start-up
    marks, and how long reading it back at start-up may take (`JOURNAL_REPLAY_TIMEOUT_S`)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def journal_replay_timeout_s(self) -> float: ...


def service_journal(
    settings: JournalSettings,
    bus: Bus,
    stream: topology.Queue,
    state_type: type[StateT],
    snapshot: Callable[[], StateT],
) -> StateJournal[StateT]:
    """A service's journal in `stream` (e.g. `topology.SYSTEM4_JOURNAL`): `state_type`
    snapshots built by `snapshot`, marked with the service's instance and read back within
    its `journal_replay_timeout_s`."""
    return StateJournal(
        bus,
        stream,
        state_type,
        snapshot,
        instance=settings.instance_id,
        timeout_s=settings.journal_replay_timeout_s,
    )
