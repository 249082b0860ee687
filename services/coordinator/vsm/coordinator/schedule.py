"""Periodic work (the oscillation report) as an asyncio task owned by the runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("vsm.coordinator.schedule")


class Every:
    """Run `job` every `interval_s` seconds until stopped; a failed run is logged, not fatal."""

    def __init__(self, name: str, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.job = job
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
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
