"""What one caller may still spend on Claude: tokens per minute, and a hard cap per day.

Tokens per minute is a bucket of that many tokens, refilled continuously (per_min / 60 a
second) and debited with each call's real tokens once answered, so it may go below zero: a
call waits while the bucket is empty, never fails for it. The daily cap, in USD, is hard: a
call whose worst case (`worst_case`) would take the day's spend past the cap fails at once
with `LlmBudgetExhausted`, before anything is sent, so the cap is never overspent. The day
is the UTC day; the spend is this process's (durable budgets are S3's). The cap that binds is
the lower of the caller's own (`daily_cap_usd`, e.g. an agent's config) and its share of its
viable system's budget (`share_usd`, from S3's allocation).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from vsm.kit.pricing import ModelPrice

__all__ = [
    "CHARS_PER_TOKEN_AT_LEAST",
    "LlmAllowance",
    "LlmBudgetExhausted",
    "utc_today",
    "worst_case",
]

CHARS_PER_TOKEN_AT_LEAST = 2
"""A prompt has at most one token per this many characters of its JSON (about 4 in practice)."""


class LlmBudgetExhausted(Exception):
    """The call would take the day's spend past the cap: it is not sent."""

    def __init__(self, spent_usd: float, worst_usd: float, cap_usd: float) -> None:
        super().__init__(
            f"the daily LLM cap of {cap_usd:g} USD would be exceeded: {spent_usd:.6f} USD spent "
            f"today, this call could cost up to {worst_usd:.6f} USD"
        )
        self.spent_usd = spent_usd
        self.worst_usd = worst_usd
        self.cap_usd = cap_usd


def worst_case(request: Mapping[str, Any], price: ModelPrice) -> float:
    """The most a request can cost, in USD: every prompt token at the dearer of the input
    and cache-write prices, and all of `max_tokens` as output."""
    prompt = {key: request.get(key) for key in ("system", "messages", "tools")}
    tokens_in = len(json.dumps(prompt, default=str)) / CHARS_PER_TOKEN_AT_LEAST
    tokens_out = int(request.get("max_tokens") or 0)
    return (tokens_in * max(price.input, price.cache_write) + tokens_out * price.output) / 1e6


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass
class LlmAllowance:
    """One caller's allowance; `tokens_per_min` and `daily_cap_usd` change at run time (None:
    no limit)."""

    tokens_per_min: int | None = None
    daily_cap_usd: float | None = None
    share_usd: float | None = None
    """The caller's share of its viable system's daily budget, as S3 allocated it."""
    clock: Callable[[], float] = time.monotonic
    today: Callable[[], date] = utc_today
    level: float | None = None
    """Tokens in the bucket (None: full)."""
    filled_at: float = 0.0
    day: date | None = None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    """The worst cases of the calls under way, held against the cap until they settle."""
    dearest_usd: float = 0.0
    """The most one of the caller's calls has cost: a provider may count more prompt tokens
    than the request's size shows (its own system prompt for tools, say), so a call's worst
    case is never taken below what a call has already cost (`worst`)."""
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wait_s(self) -> float:
        """How long until the bucket holds a token again (0: now)."""
        per_min = self.tokens_per_min
        if per_min is None:
            return 0.0
        now = self.clock()
        level = per_min if self.level is None else self.level
        level = min(per_min, level + (now - self.filled_at) * per_min / 60)
        self.level, self.filled_at = level, now
        return 0.0 if level > 0 else -level * 60 / per_min + 0.001

    def spent_today(self) -> float:
        if self.day != self.today():
            self.day, self.spent_usd = self.today(), 0.0
        return self.spent_usd

    @property
    def cap_usd(self) -> float | None:
        """The cap that binds today: the lower of its own cap and S3's share (None: none)."""
        caps = [c for c in (self.daily_cap_usd, self.share_usd) if c is not None]
        return min(caps) if caps else None

    def worst(self, estimate_usd: float) -> float:
        """A call's worst case: its `worst_case` estimate, or the dearest call so far."""
        return max(estimate_usd, self.dearest_usd)

    def check_cap(self, worst_usd: float) -> None:
        """`LlmBudgetExhausted` if a call costing up to `worst_usd` could cross the cap, with
        what is spent today and what the calls under way may still cost."""
        cap = self.cap_usd
        committed = self.spent_today() + self.reserved_usd
        if cap is not None and committed + worst_usd > cap:
            raise LlmBudgetExhausted(committed, worst_usd, cap)

    async def admit(self, worst_usd: float) -> None:
        """Wait for tokens (in turn), then pass the cap, holding `worst_usd` against it until
        `settle`; or fail."""
        async with self._turn:
            wait = self.wait_s()
            while wait > 0:  # again after each sleep: S3 may change the rate meanwhile
                await asyncio.sleep(wait)
                wait = self.wait_s()
            self.check_cap(worst_usd)
            self.reserved_usd += worst_usd

    def settle(self, worst_usd: float, tokens: int = 0, usd: float = 0.0) -> None:
        """An admitted call is over: it cost `usd` and `tokens` (0 when it failed)."""
        self.reserved_usd = max(0.0, self.reserved_usd - worst_usd)
        self.spent_today()
        self.spent_usd += usd
        self.dearest_usd = max(self.dearest_usd, usd)
        if self.tokens_per_min is not None:
            self.wait_s()  # brings the level up to now before the debit
            self.level = (self.level or 0.0) - tokens
