"""Coordinated messages between S1 units: who may write to whom, and how often.

Both units must be known and running. Notes are rate-limited per (from, to) pair, so two
units answering each other's notes cannot ping-pong the system.
"""

from __future__ import annotations

from vsm.contract.errors import ErrorReply
from vsm.coordinator.capacity import Fleet, TokenBucket


class NoteLimiter:
    def __init__(self, rate_per_s: float, limit: int = 10_000) -> None:
        self.rate_per_s = rate_per_s
        self.limit = limit
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self.delivered = 0

    def allow(self, from_agent: str, to_agent: str, now: float) -> bool:
        pair = (from_agent, to_agent)
        bucket = self.buckets.get(pair)
        if bucket is None:
            if len(self.buckets) >= self.limit:  # full buckets carry no history: drop them
                self.buckets = {k: b for k, b in self.buckets.items() if not _full(b, now)}
            bucket = self.buckets[pair] = TokenBucket.full(self.rate_per_s, now)
        return bucket.take(now)


def _full(bucket: TokenBucket, now: float) -> bool:
    bucket.ready(now)
    return bucket.tokens >= max(1.0, bucket.rate_per_s)


def refusal(fleet: Fleet, from_agent: str, to_agent: str) -> ErrorReply | None:
    """`unknown_agent` naming whichever of the two S2 does not know as running."""
    unknown = [a for a in dict.fromkeys((from_agent, to_agent)) if a not in fleet.agents]
    if not unknown:
        return None
    return ErrorReply(
        code="unknown_agent",
        message=f"no running agent {', '.join(repr(a) for a in unknown)}: "
        "both ends of a coordinated message must be running agents",
        details={"unknown": unknown},
    )


def rate_limited(from_agent: str, to_agent: str, rate_per_s: float) -> ErrorReply:
    return ErrorReply(
        code="rate_limited",
        message=f"too many notes from {from_agent} to {to_agent}: "
        f"at most {rate_per_s:g} per second",
        details={"from_agent": from_agent, "to_agent": to_agent, "rate_per_s": rate_per_s},
    )
