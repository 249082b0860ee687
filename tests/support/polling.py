"""Waiting for an eventual state of a running system, with a deadline and a clear failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    timeout: float = 20.0,
    interval: float = 0.2,
    what: str = "the expected state",
) -> T:
    """The first truthy value `check()` returns; AssertionError after `timeout` seconds."""
    last: T | None = None
    for _ in range(max(1, int(timeout / interval))):
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")
