"""Periodic work of a service (scans, reports, sporadic audits) as asyncio tasks it owns."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import structlog

__all__ = ["Every", "Job"]

log = structlog.get_logger("vsm.kit.schedule")

Job = Callable[[], Awaitable[None]]


class Every:
    """Run `job` every `interval_s` seconds (give or take `jitter` of it) until stopped.

    Jitter keeps sporadic work (S3* audits) unannounced; a failed run is logged, and the
    next one follows.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        job: Job,
        *,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.job = job
        self.jitter = jitter
        self.rng = rng or random.Random()  # noqa: S311 - timing, not secrets
        self.task: asyncio.Task[None] | None = None

    def next_wait(self) -> float:
        spread = self.interval_s * self.jitter
        return self.interval_s + self.rng.uniform(-spread, spread)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.next_wait())
            try:
                await self.job()
            except Exception as error:  # the broker may be away; the next run tries again
                log.warning("scheduled_job_failed", job=self.name, error=repr(error))

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
