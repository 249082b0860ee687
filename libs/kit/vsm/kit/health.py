"""Every service's heartbeat: a `HealthReport` on `vsm.health` every interval."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.health import HealthReport
from vsm.kit.bus import Bus

__all__ = ["Details", "HealthReporter"]

log = structlog.get_logger("vsm.health")

Details = Callable[[], dict[str, Any]]


class HealthReporter:
    def __init__(self, bus: Bus, *, instance: str, interval_s: float) -> None:
        self.bus = bus
        self.instance = instance
        self.interval_s = interval_s
        self.started_at = datetime.now(UTC)
        self._details: list[Details] = []
        self._task: asyncio.Task[None] | None = None
        self.publisher = bus.publisher(topology.HEALTH, HealthReport)

    def add_details(self, details: Details) -> None:
        """Add what this service wants S5 to know (e.g. `{"bot": "disabled"}`)."""
        self._details.append(details)

    def report(self) -> HealthReport:
        details: dict[str, Any] = {}
        for provide in self._details:
            details |= provide()
        return HealthReport(
            service=self.bus.service,
            instance=self.instance,
            role=topology.VSM_ROLE.get(self.bus.service, "other"),
            state="degraded" if details.get("degraded") else "up",
            interval_s=self.interval_s,
            started_at=self.started_at,
            details=details,
        )

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.publisher.publish(self.report(), mandatory=False)
            except Exception as error:  # the broker may be away; the next beat will try again
                # Said once per outage, not every beat; the runtime logs the outage itself.
                (log.debug if failing else log.warning)("health_report_failed", error=repr(error))
                failing = True
            else:
                failing = False
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="health-reporter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
