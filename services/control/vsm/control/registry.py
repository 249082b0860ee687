"""What S3 knows of S1's agents: the registry's listing at start-up, then its events.

Operations may start after control, so the listing is asked for in the background until
operations answers; events arriving meanwhile are applied too (admitting is idempotent, and
a terminated agent is never brought back by a late listing). An agent S3's journal brought
back that the listing no longer has was terminated before it: its account is closed, and
one the listing has that the journal lacks is opened (S3 keeps registry events in its journal
only for what the listing cannot tell, a USD share or a day's spend, and at its own rhythm,
not before acking them: the registry is their record).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from vsm.contract.control import System3Snapshot
from vsm.contract.operations import AgentList, ListAgents
from vsm.control.outlets import Outlets
from vsm.control.system3 import System3
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal

log = structlog.get_logger("vsm.control.registry")


class RegistryFollower:
    def __init__(
        self,
        bus: Bus,
        s3: System3,
        out: Outlets,
        journal: StateJournal[System3Snapshot],
        retry_s: float,
    ) -> None:
        self.bus = bus
        self.s3 = s3
        self.out = out
        self.journal = journal
        self.retry_s = retry_s
        self.task: asyncio.Task[None] | None = None
        self.listed = asyncio.Event()

    async def _learn(self) -> None:
        restored = set(self.s3.ledger.where)
        while True:
            try:
                listing = await self.bus.query("operations", "list", ListAgents(), AgentList)
                changes = [c for agent in listing.agents for c in self.s3.admit(agent)]
                for gone in restored - {agent.agent_id for agent in listing.agents}:
                    self.s3.close(gone)
                await self.journal.keep()
            except Exception as error:  # operations not up yet, or the broker away: retry
                log.info("agent_listing_retry", error=repr(error))
                await asyncio.sleep(self.retry_s)
                continue
            await self.out.changed(changes)
            self.listed.set()
            log.info("agents_listed", agents=len(listing.agents))
            return

    async def start(self) -> None:
        self.task = asyncio.create_task(self._learn(), name="s3-agent-listing")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
