"""What an agent may use now, as S3 allocates it: concurrency slots and a rate.

Both make work wait, never fail: a command beyond the slots waits for one, a command beyond
the rate waits for its turn. Resizing takes effect at once for waiting commands; commands
already running finish even when the new size is smaller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class Slots:
    """A semaphore whose size S3 can change while commands wait on it, served in arrival
    order: a command never takes a slot ahead of one that waited for it first (an agent's
    commands start in their order)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.taken = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.taken < self.capacity and not self._waiting:
            self.taken += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn  # the slot is counted as taken for it when its turn comes
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # its turn came as it was cancelled
                self._give_back()
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
            raise

    async def __aexit__(self, *_: object) -> None:
        self._give_back()

    def release(self) -> None:
        """Give a slot back (synchronous: nothing to await, so no cancellation can lose it)."""
        self._give_back()

    def _give_back(self) -> None:
        self.taken -= 1
        self._serve()

    def _serve(self) -> None:
        while self._waiting and self.taken < self.capacity:
            turn = self._waiting.popleft()
            if not turn.done():
                self.taken += 1
                turn.set_result(None)

    async def resize(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._serve()


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
