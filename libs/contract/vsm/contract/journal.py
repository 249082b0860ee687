"""A service's journal (a stream of its own): the marker written at each start-up.

The entries themselves are the services' own snapshots (`System3Snapshot`,
`System2Snapshot`, `System4Snapshot`, `System5Snapshot`); see `vsm.kit.journal`.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from vsm.contract.message import Message

__all__ = ["JournalMark", "LogSnapshot"]


class JournalMark(Message):
    """Written straight to a journal when its service starts: the read-back stops here."""

    TYPE: ClassVar[str] = "vsm.journal.mark.v1"

    instance: str = Field(max_length=128)
    live_keys: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="The ids of the keys that verified live traffic when this was written "
        "(none: unsigned). An older key left out is retired from here on: a journal entry it "
        "signs later is refused.",
    )


class LogSnapshot(Message):
    """The base of a log's snapshot of its writer's live state (`vsm.kit.snapshots`): what
    every one says besides the state."""

    covers: int | None = Field(
        default=None,
        ge=0,
        description="The offset of the last log entry this state includes, for a log with "
        "several writers: the entries after it (some may precede the snapshot itself) are "
        "applied on top. None: every entry before the snapshot.",
    )
    retired_keys: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="The ids of the keys the writer kept for the logs alone (retired from "
        "live traffic): an entry after this snapshot signed with one is refused.",
    )
