"""Replay protection: a freshness window on the envelope's `time`, and the ids already handled.

It runs after the signature check, so `id` and `time` are the sender's own. A message older
than the window is `stale`, one dated further ahead than the tolerated clock skew is
`from_future`, and one whose id this queue has already handled inside the window is
`replayed`. An id is recorded only once its message has been handled (just before the ack),
and a broker redelivery (the `redelivered` flag, which only the broker sets) skips the id
check: a retry after a failure or a lost ack is not a replay. Records expire with the window,
after which the window itself refuses the message. The store is an exact dict in the
process; a Bloom filter in front would only pay for a store behind a network hop. Pure: the
clock is given.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, TypeAdapter, ValidationError

__all__ = ["Key", "Refusal", "ReplayGuard", "SentAt", "Stamp", "stamp_of"]

Refusal = Literal["stale", "from_future", "replayed"]
Key = tuple[str, str]
SentAt: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)  # the envelope's reading of `time`


@dataclass(frozen=True)
class Stamp:
    """Where a message was consumed, and the id and time its (verified) envelope claims."""

    queue: str
    message_id: str
    sent_at: datetime

    @property
    def key(self) -> Key:
        return (self.queue, self.message_id)


def stamp_of(queue: str, envelope: Any) -> Stamp | None:
    """The parsed envelope's id and time; None when unreadable (its schema check refuses it)."""
    if not isinstance(envelope, dict):
        return None
    message_id = envelope.get("id")
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= 128:
        return None
    try:
        return Stamp(queue, message_id, SentAt.validate_python(envelope.get("time")))
    except ValidationError:
        return None


class ReplayGuard:
    def __init__(
        self, window_s: float, max_skew_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        if window_s <= 0 or max_skew_s < 0:
            raise ValueError("the window must be positive and the skew not negative")
        self.window_s = window_s
        self.max_skew_s = max_skew_s
        self.clock = clock
        self._handled: dict[Key, float] = {}  # (queue, id) -> when the record expires
        self._expiries: list[tuple[float, Key]] = []
        self._in_flight: Counter[Key] = Counter()
        self._unsettled_refusals: dict[Key, float] = {}

    def __len__(self) -> int:
        return len(self._handled)

    def admit(self, stamp: Stamp, *, redelivered: bool) -> Refusal | None:
        """Why the message must not be handled, or None (it is then in flight)."""
        now, sent = self.clock(), stamp.sent_at.timestamp()
        if sent > now + self.max_skew_s:
            return "from_future"
        if sent < now - self.window_s:
            return "stale"
        self._expire(now)
        key = stamp.key
        if key in self._unsettled_refusals or (
            not redelivered and (key in self._handled or key in self._in_flight)
        ):
            return "replayed"
        self._in_flight[key] += 1
        return None

    def settle(self, stamp: Stamp, *, handled: bool) -> None:
        """The admitted message is done; `handled` (about to be acked) records its id."""
        key = stamp.key
        self._in_flight[key] -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]
        if handled:
            self._remember(self._handled, key, self._expiry(stamp))

    def refusal_unsettled(self, stamp: Stamp) -> None:
        """A replay could not be parked and will come back redelivered: refuse it again then."""
        self._remember(self._unsettled_refusals, stamp.key, self._expiry(stamp))

    def _expiry(self, stamp: Stamp) -> float:
        return stamp.sent_at.timestamp() + self.window_s

    def _remember(self, store: dict[Key, float], key: Key, expires: float) -> None:
        expires = max(store.get(key, 0.0), expires)
        store[key] = expires
        heapq.heappush(self._expiries, (expires, key))

    def _expire(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            expires, key = heapq.heappop(self._expiries)
            for store in (self._handled, self._unsettled_refusals):
                if store.get(key) == expires:
                    del store[key]
