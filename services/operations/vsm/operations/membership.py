"""The other hosts of agents, heard from their heartbeats on `vsm.health` (through a transient
queue of this process's own): operations replicas serve operations' partitions, agent hosts
the pools of the types they offer (`details.offers`). Who is live decides who owns which
partition (`Placement`); work is done only when the set of live hosts of a pool changes.
operations also learns from them which types hosts offer (`HostOffers`)."""

from __future__ import annotations

import asyncio
import time

import structlog
from pydantic import TypeAdapter, ValidationError

from vsm.contract import topology
from vsm.contract.agent_types import HOST_SERVICE, MAX_OFFERS, AgentTypeManifest
from vsm.contract.health import HealthReport
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.observer import Observer
from vsm.operations.host import AgentHost
from vsm.operations.offers import HostOffers
from vsm.operations.registry import Registry

log = structlog.get_logger("vsm.operations.membership")
Offers = TypeAdapter(list[AgentTypeManifest])


class Membership:
    def __init__(
        self, bus: Bus, host: AgentHost, registry: Registry, offers: HostOffers | None = None
    ) -> None:
        self.host = host
        self.registry = registry
        self.offers = offers
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
        if not isinstance(report, HealthReport):
            return
        now = time.monotonic()
        ready = bool(report.details.get("partitions_ready"))
        if report.service == "operations":
            pools: list[str | None] = [None]
        elif report.service == HOST_SERVICE:
            try:
                offers = Offers.validate_python(report.details.get("offers", [])[:MAX_OFFERS])
            except (ValidationError, TypeError):
                return
            if self.offers is not None:
                self.offers.heard(report.instance, offers, now)
            pools = [manifest.name for manifest in offers]
        else:
            return
        if self.host.heard(report.instance, pools, ready, now):
            task = asyncio.create_task(self._changed(), name="s1-placement")
            self._changes.add(task)
            task.add_done_callback(self._changes.discard)

    async def _changed(self) -> None:
        try:
            await self.host.placement_changed(self.registry.running())
        except Exception as error:
            log.error("placement_change_failed", error=repr(error))
