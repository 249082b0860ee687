"""The event logs read back (RabbitMQ streams: the policy log, the registry log, the trail),
every entry's signature checked, in stream order.

A log outlives its keys: its entries verify under the signing keys and under the keys kept
for the logs alone (`VSM_LOG_KEYS`), so retiring a key from live traffic never makes a log
unreadable. An entry that does not verify is never skipped silently: it is refused with an
error naming the log, the entry's offset and message id and the key id, logged as a security
event; a state log then stops the service's start-up (a state rebuilt without one entry is
wrong: one lost policy version drops every later one). The operator either adds the key to
`VSM_LOG_KEYS` or, having found the entry to be a forgery, names it in `VSM_LOG_SKIP`.

A key kept for the logs vouches only for the entries written while it was live: the marker a
service writes into its log when it opens it (`PolicyStoreOpened`, `RegistryMark`) names the
keys live then. A marker signed with a newer key than some key it leaves out retires that
key from there on, and an entry signed with a retired key after its retirement is refused,
so a retired key, leaked or not, cannot add to a log. (Newer: first seen later in the log.
A replica still on an older configuration writes markers with an older key, which retire
nothing newer, so a rolling restart retires nothing by accident.)

A snapshot (`vsm.kit.snapshots`) names the keys its writer kept for the logs alone: they are
retired from the snapshot on, so a reading that starts at the last snapshot (and sees no
earlier marker) still refuses an entry a retired key signs after it.

A log's history is read as it was written: entries signed over the body alone (format 1,
earlier releases) until the log's first entry that signs its destination, and unsigned
entries (written before signing was switched on) until its first signed entry, those only
with `VSM_LOG_UNSIGNED_HISTORY=accept`. Offsets mark where the history ends, so a reader that
starts again from the first entry judges each entry the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from aio_pika.abc import AbstractIncomingMessage

from vsm.contract.errors import Unprocessable
from vsm.kit.signing import BadSignature, Keyring, key_id_of, signature_format

if TYPE_CHECKING:
    from vsm.kit.deadletter import MessageGuard

__all__ = ["OFFSET_HEADER", "LogKeys", "LogReading", "RefusedEntry", "offset_of"]

log = structlog.get_logger("vsm.eventlog")
OFFSET_HEADER = "x-stream-offset"
"""Set by the broker on every delivery from a stream: the entry's position in the log."""


@dataclass(frozen=True)
class LogKeys:
    """How the logs are read: what verifies them, and what the operator allowed or disowned."""

    keyring: Keyring
    """The signing keys, then the keys that verify the logs only."""
    unsigned_history: bool = False
    skip: frozenset[str] = field(default_factory=frozenset)
    """Entries the operator disowns, `<stream>@<offset>` each."""


class RefusedEntry(Exception):
    """A log entry that does not verify; the message names it and says what the operator
    can do."""

    offset: int | None = None
    """Where the entry is in its log, when the reader knows it."""


def offset_of(message: AbstractIncomingMessage) -> int | None:
    offset = (message.headers or {}).get(OFFSET_HEADER)
    return offset if isinstance(offset, int) else None


def _before(first: int | None, offset: int | None) -> bool:
    """Whether the entry at `offset` precedes the first entry of a newer kind (at `first`)."""
    return offset is not None and (first is None or offset < first)


def _earliest(first: int | None, offset: int | None) -> int | None:
    return first if offset is None or (first is not None and first <= offset) else offset


class LogReading:
    """One reader's check of one log (`stream`, its canonical name)."""

    def __init__(self, guard: MessageGuard | None, stream: str) -> None:
        self.guard = guard
        self.stream = stream
        self._signed_from: int | None = None
        """The offset of the log's first signed entry."""
        self._bound_from: int | None = None
        """The offset of the log's first entry that signs its destination."""
        self._first_seen: dict[str, int] = {}
        """Key id -> the offset where the log first names it (a marker) or uses it."""
        self._retired: dict[str, int] = {}
        """Key id -> the offset of the marker that retired it."""

    def opened(self, message: AbstractIncomingMessage, live_keys: list[str]) -> None:
        """A marker of this log (checked already) names the keys live when it was written:
        the keys it leaves out that are older than the key that signed it are retired. A
        marker that names none (unsigned, or from an earlier release) says nothing."""
        offset, signer = offset_of(message), key_id_of(message.headers or {})
        if self.guard is None or not live_keys or offset is None or signer is None:
            return
        for key_id in live_keys:
            self._seen(key_id, offset)
        newest = self._first_seen.get(signer, offset)
        for key_id, seen in self._first_seen.items():
            if key_id not in live_keys and seen < newest:
                self._retired[key_id] = min(self._retired.get(key_id, offset), offset)

    def retire(self, message: AbstractIncomingMessage, key_ids: list[str]) -> None:
        """A snapshot of this log (checked already) names the keys its writer kept for the
        logs alone: each is retired from the snapshot on, whatever this reading saw before
        (a reading that starts at the snapshot has seen no marker before it)."""
        offset = offset_of(message)
        if self.guard is None or offset is None:
            return
        for key_id in key_ids:
            self._retired[key_id] = min(self._retired.get(key_id, offset), offset)

    def _seen(self, key_id: str, offset: int) -> None:
        self._first_seen[key_id] = min(self._first_seen.get(key_id, offset), offset)

    def check(self, message: AbstractIncomingMessage) -> bool:
        """True: read the entry; False: the operator disowns it (`VSM_LOG_SKIP`). Raises
        `RefusedEntry` (after logging a security event) when it does not verify. Without
        signing keys every entry is read."""
        if self.guard is None:
            return True
        offset, logs = offset_of(message), self.guard.logs
        if f"{self.stream}@{offset}" in logs.skip:
            log.warning(
                "log_entry_skipped",
                stream=self.stream,
                offset=offset,
                message_id=message.message_id,
                why="VSM_LOG_SKIP",
            )
            return False
        form = signature_format(message.headers or {})
        try:
            if form == 0:
                self._unsigned(offset, logs)
            else:
                self._verify(message, form, offset, logs.keyring)
        except BadSignature as bad:
            raise self._refused(message, offset, form, bad) from None
        return True

    def _unsigned(self, offset: int | None, logs: LogKeys) -> None:
        if not _before(self._signed_from, offset):
            raise BadSignature("the entry is not signed, and signed entries come before it")
        if not logs.unsigned_history:
            raise BadSignature("the entry is not signed")

    def _verify(
        self, message: AbstractIncomingMessage, form: int, offset: int | None, keyring: Keyring
    ) -> None:
        body_only = form == 1
        if body_only and not _before(self._bound_from, offset):
            raise BadSignature(
                "the entry's signature covers the body alone, and entries that sign their "
                "destination come before it"
            )
        headers = message.headers or {}
        keyring.verify(
            message.body,
            headers,
            message.exchange or "",
            message.routing_key or "",
            body_only=body_only,
        )
        key_id = key_id_of(headers)
        retired = None if key_id is None else self._retired.get(key_id)
        if retired is not None and (offset is None or offset > retired):
            raise BadSignature(
                f"key {key_id!r} signed it after its retirement from live traffic (the marker "
                f"at offset {retired} leaves it out of the live keys)",
                key_id,
            )
        if key_id is not None and offset is not None:
            self._seen(key_id, offset)
        self._signed_from = _earliest(self._signed_from, offset)
        if not body_only:
            self._bound_from = _earliest(self._bound_from, offset)

    def unreadable(self, message: AbstractIncomingMessage, error: Exception) -> RefusedEntry:
        """An entry that verifies (or is not checked) but cannot be read: for a state log,
        as final as one that does not verify (the operator may disown it the same way)."""
        offset = offset_of(message)
        entry = f"{self.stream}@{offset}"
        remedy = (
            f"if it is not the service's own, skip it with VSM_LOG_SKIP={entry}"
            if self.guard is not None
            else "was it written by another release of vsm?"
        )
        detail = (
            f"log {self.stream}, entry at offset {offset} (message id {message.message_id!r}) "
            f"cannot be read: {str(error)[:300]}; {remedy}"
        )
        log.error(
            "log_entry_unreadable",
            stream=self.stream,
            offset=offset,
            message_id=message.message_id,
            detail=detail,
        )
        return RefusedEntry(detail)

    def _refused(
        self, message: AbstractIncomingMessage, offset: int | None, form: int, bad: BadSignature
    ) -> RefusedEntry:
        key_id = bad.key_id or key_id_of(message.headers or {})
        entry = f"{self.stream}@{offset}"
        remedies = [f"if it is a forgery, skip it with VSM_LOG_SKIP={entry}"]
        known = self.guard is not None and key_id in dict(self.guard.logs.keyring.keys)
        if form == 0:
            remedies.insert(
                0,
                "if it was written before signing was switched on, set "
                "VSM_LOG_UNSIGNED_HISTORY=accept",
            )
        elif key_id is not None and not known:
            remedies.insert(0, f"if key {key_id!r} was retired, add it to VSM_LOG_KEYS")
        detail = (
            f"log {self.stream}, entry at offset {offset} (message id {message.message_id!r}, "
            f"key id {key_id!r}) does not verify: {bad}; " + "; ".join(remedies)
        )
        if self.guard is not None:
            self.guard.security_event(message, self.stream, Unprocessable("bad_signature", detail))
        log.error(
            "log_entry_refused",
            stream=self.stream,
            offset=offset,
            message_id=message.message_id,
            key_id=key_id,
            detail=detail,
        )
        return RefusedEntry(detail)
