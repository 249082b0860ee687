"""The other operations replicas, heard from their heartbeats on `vsm.health` (through a
transient queue of this replica's own): who is live decides who owns which partition
(`Placement`). Work is done only when the set of live replicas changes."""

from __future__ import annotations

import asyncio
import time

import structlog
from pydantic import ValidationError

from vsm.contract import topology
from vsm.contract.health import HealthReport
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.observer import Observer
from vsm.operations.host import AgentHost
from vsm.operations.registry import Registry

log = structlog.get_logger("vsm.operations.membership")


class Membership:
    def __init__(self, bus: Bus, host: AgentHost, registry: Registry) -> None:
        self.host = host
        self.registry = registry
        self.observer = Observer(bus, (topology.Binding(topology.HEALTH),), self._heard)
        self._changes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.observer.start()

    async def stop(self) -> None:
        await self.observer.stop()
        for task in list(self._changes):
            task.cancel()

    def _heard(self, exchange: str, routing_key: str, body: bytes) -> None:
        try:
            report = AnyEnvelope.validate_json(body).data
        except (ValidationError, ValueError):
            return
        if not isinstance(report, HealthReport) or report.service != "operations":
            return
        ready = bool(report.details.get("partitions_ready"))
        if self.host.placement.heard(report.instance, ready, time.monotonic()):
            task = asyncio.create_task(self._changed(), name="s1-placement")
            self._changes.add(task)
            task.add_done_callback(self._changes.discard)

    async def _changed(self) -> None:
        try:
            await self.host.placement_changed(self.registry.running())
        except Exception as error:
            log.error("placement_change_failed", error=repr(error))
