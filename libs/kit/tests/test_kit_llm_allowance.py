"""An LLM caller's allowance: tokens per minute make calls wait, the daily cap refuses the
call whose worst case would cross it, calls under way are held against the cap."""

from __future__ import annotations

from datetime import date

import pytest

from vsm.kit.llm_allowance import LlmAllowance, LlmBudgetExhausted, worst_case
from vsm.kit.pricing import DEFAULT_PRICES


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_at_its_rate_after_a_call_overdraws_it() -> None:
    clock = Clock()
    allowance = LlmAllowance(tokens_per_min=600, clock=clock)  # 10 tokens a second
    assert allowance.wait_s() == 0
    allowance.settle(0.0, tokens=700)  # 100 short
    assert allowance.wait_s() == pytest.approx(10, abs=0.01)
    clock.now += 4
    assert allowance.wait_s() == pytest.approx(6, abs=0.01)
    clock.now += 6.1
    assert allowance.wait_s() == 0
    allowance.tokens_per_min = None  # S3 lifts the limit
    allowance.settle(0.0, tokens=10**9)
    assert allowance.wait_s() == 0


async def test_the_cap_holds_calls_under_way_and_resets_with_the_utc_day() -> None:
    day = [date(2026, 1, 1)]
    allowance = LlmAllowance(daily_cap_usd=1.0, today=lambda: day[0])
    await allowance.admit(0.6)
    with pytest.raises(LlmBudgetExhausted) as refused:
        await allowance.admit(0.6)  # the first may still cost 0.6
    assert refused.value.cap_usd == 1.0
    allowance.settle(0.6, tokens=10, usd=0.2)
    await allowance.admit(0.6)  # 0.2 spent + 0.6 worst case
    allowance.settle(0.6, tokens=10, usd=0.5)
    with pytest.raises(LlmBudgetExhausted):
        await allowance.admit(0.31)
    day[0] = date(2026, 1, 2)
    await allowance.admit(0.9)


def test_the_worst_case_is_the_whole_prompt_and_every_output_token() -> None:
    price = DEFAULT_PRICES["claude-haiku-4-5"]
    request = {"messages": [{"role": "user", "content": "x" * 2000}], "max_tokens": 1000}
    # at least 1000 prompt tokens at 1.25 USD (the cache-write price), 1000 at 5 USD
    assert worst_case(request, price) >= (1000 * 1.25 + 1000 * 5) / 1e6


async def test_a_calls_worst_case_is_never_below_the_dearest_call_so_far() -> None:
    allowance = LlmAllowance(share_usd=0.0100)
    for _ in range(6):  # estimated at 0.0006 each, charged 0.0015 by the provider
        await allowance.admit(allowance.worst(0.0006))
        allowance.settle(allowance.worst(0.0006), tokens=1100, usd=0.0015)
    assert allowance.spent_usd == pytest.approx(0.0090)
    with pytest.raises(LlmBudgetExhausted):  # room for the estimate, not for what calls cost
        await allowance.admit(allowance.worst(0.0006))
    assert allowance.spent_usd <= allowance.cap_usd  # type: ignore[operator]
