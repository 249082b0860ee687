"""Rate limits per caller, for MCP (vsm.mcp_gateway.mcp.security) and REST (the edge's gate):
a sliding one-minute window of request times per client, and the 429 past it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vsm.mcp_gateway.crosssite import Refusal

WINDOW_S = 60.0


@dataclass
class RateLimiter:
    """A sliding one-minute window of request times per client (a token's digest, with the
    address for MCP): never the token itself."""

    per_minute: int
    max_clients: int = 10_000
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str, now: float) -> float | None:
        """None when `client` may go ahead (and counts the request), else seconds to wait."""
        times = self._seen.get(client)
        if times is None:
            if len(self._seen) >= self.max_clients:
                self._forget_idle(now)
            times = self._seen.setdefault(client, deque())
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            return WINDOW_S - (now - times[0])
        times.append(now)
        return None

    def refusal(self, client: str, now: float, what: str) -> Refusal | None:
        """429 `rate_limited` with `Retry-After` (whole seconds) past the rate, else None."""
        wait = self.retry_after(client, now)
        if wait is None:
            return None
        return Refusal(
            429,
            "rate_limited",
            f"more than {self.per_minute} {what} requests a minute; retry later",
            {"Retry-After": str(max(1, int(wait + 0.999)))},
        )

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, t in self._seen.items() if not t or now - t[-1] >= WINDOW_S]:
            del self._seen[client]
