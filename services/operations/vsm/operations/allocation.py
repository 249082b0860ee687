"""What an agent may use now, as S3 allocates it: concurrency slots and a rate.

Both make work wait, never fail: a command beyond the slots waits for one, a command beyond
the rate waits for its turn. Resizing takes effect at once for waiting commands; commands
already running finish even when the new size is smaller.
"""

from __future__ import annotations

import asyncio
import time


class Slots:
    """A semaphore whose size S3 can change while commands wait on it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.taken = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.taken < self.capacity)
            self.taken += 1

    async def __aexit__(self, *_: object) -> None:
        async with self._changed:
            self.taken -= 1
            self._changed.notify_all()

    async def resize(self, capacity: int) -> None:
        async with self._changed:
            self.capacity = max(1, capacity)
            self._changed.notify_all()


class Rate:
    """At most `per_s` starts per second (None: unlimited), spaced evenly, first come first."""

    def __init__(self, per_s: float | None = None) -> None:
        self.per_s = per_s
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.per_s is None:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 1.0 / self.per_s
        if start > now:
            await asyncio.sleep(start - now)

    def change(self, per_s: float | None) -> None:
        self.per_s = per_s
        self._next = min(self._next, time.monotonic())
