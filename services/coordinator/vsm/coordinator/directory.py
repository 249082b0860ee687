"""Which S1 agents exist, as S2 learns it: operations' listing once at start-up, then the
registry events on S2's intake. An agent not known yet (its spawn event may still be on its
way when work or a note for it arrives) is looked up in the registry once."""

from __future__ import annotations

import asyncio

import structlog

from vsm.contract.operations import AgentDescription, AgentList, GetAgent, ListAgents
from vsm.coordinator.capacity import Fleet
from vsm.kit.bus import Bus, RequestFailed

log = structlog.get_logger("vsm.coordinator.directory")


class Directory:
    def __init__(self, bus: Bus, fleet: Fleet, retry_s: float) -> None:
        self.bus = bus
        self.fleet = fleet
        self.retry_s = retry_s
        self._lookups: dict[str, asyncio.Task[bool]] = {}

    async def sync(self) -> None:
        """Learn every running agent from operations, asking until it answers."""
        while True:
            try:
                listing = await self.bus.query("operations", "list", ListAgents(), AgentList)
            except Exception as error:  # operations not up yet: S2 waits, work waits queued
                log.info("registry_not_answering", error=repr(error))
                await asyncio.sleep(self.retry_s)
                continue
            for info in listing.agents:
                self.fleet.learn(info)
            log.info("registry_synced", agents=len(listing.agents))
            return

    async def known(self, agent_id: str) -> bool:
        """Whether `agent_id` is a running agent; concurrent misses share one lookup."""
        if agent_id in self.fleet.agents:
            return True
        lookup = self._lookups.get(agent_id)
        if lookup is None:
            lookup = asyncio.create_task(self._lookup(agent_id))
            self._lookups[agent_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(agent_id, None))
        return await asyncio.shield(lookup)

    async def _lookup(self, agent_id: str) -> bool:
        try:
            found = await self.bus.query(
                "operations", "get", GetAgent(agent_id=agent_id), AgentDescription
            )
        except RequestFailed as failed:
            if failed.reply.code == "agent_not_found":
                return False
            raise
        self.fleet.learn(found.agent)
        return agent_id in self.fleet.agents
