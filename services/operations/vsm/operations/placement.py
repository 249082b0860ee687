"""Which replica serves which partition, as plain data: rendezvous hashing over the live
operations replicas (heard on `vsm.health`), so that partitions spread over the replicas and
only those of a replica that joins or leaves move.

A replica is live while its heartbeats keep coming (within `ttl_s`) and once it says it
consumes its partitions (`ready`); this replica counts itself live from the start. Memory is
one entry per replica heard, forgotten once silent.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

__all__ = ["Placement", "score"]


@functools.lru_cache(maxsize=4096)
def score(instance: str, partition: int) -> int:
    """The rendezvous weight of `instance` for `partition`: the highest-weighted live replica
    owns it. Kept (a few replicas times the partitions): every message on a partition asks
    who owns it (`AgentHost._hand_over_due`)."""
    digest = hashlib.blake2b(f"{partition}/{instance}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class Placement:
    me: str
    partitions: int
    ttl_s: float
    fresh_s: float | None = None
    """Heard within this long: surely alive (a partition is handed over only to such a
    replica, not to one that may have just died); by default `ttl_s`."""
    seen: dict[str, float] = field(default_factory=dict)
    """When each other ready replica was last heard (monotonic seconds)."""

    def heard(self, instance: str, ready: bool, now: float) -> bool:
        """Take one heartbeat; True when the set of live replicas changed."""
        before = self.live(now)
        if instance != self.me:
            if ready:
                self.seen[instance] = now
            else:
                self.seen.pop(instance, None)
        return self.live(now) != before

    def live(self, now: float) -> list[str]:
        if not self.seen:  # alone (asked per message: no copy, no sort)
            return [self.me]
        for instance, last in list(self.seen.items()):
            if now - last > self.ttl_s:
                del self.seen[instance]
        return sorted({self.me, *self.seen})

    def fresh(self, instance: str, now: float) -> bool:
        """Whether `instance` is this replica or was heard within `fresh_s`."""
        last = self.seen.get(instance)
        within = self.ttl_s if self.fresh_s is None else self.fresh_s
        return instance == self.me or (last is not None and now - last <= within)

    def owner(self, partition: int, now: float) -> str:
        live = self.live(now)
        if len(live) == 1:
            return live[0]
        return max(live, key=lambda instance: score(instance, partition))

    def owned(self, now: float) -> set[int]:
        live = self.live(now)
        return {
            p
            for p in range(self.partitions)
            if max(live, key=lambda instance: score(instance, p)) == self.me
        }
