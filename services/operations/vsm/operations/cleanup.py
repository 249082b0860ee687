"""The results exchanges of terminated agents, deleted in the background.

A termination is answered once the agent is unrouted and logged: it takes no more commands
and the registry says so. Deleting its results exchange (with its join into
`vsm.s1.results`) costs the broker more than creating it did, so it is left to one worker per
replica, `CLEANUPS_IN_FLIGHT` deletions at a time. An observer bound to a terminated agent's
results exchange hears nothing more from it, then loses its binding when the exchange goes.
A spawn `claim`s its agent's id first, so that a deletion still pending or under way for an
earlier agent of that id never takes the new one's exchange. A deletion that fails (the
broker refuses it, the channel or connection is lost, no answer in time) is not done: it is
logged (`cleanup_failed`), counted (`failures`) and tried again after a growing pause, while
the replica runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import structlog

from vsm.contract.operations import AgentInfo
from vsm.kit.bus import Bus
from vsm.operations.wiring import forget_agent

CLEANUPS_IN_FLIGHT = 32
"""Results exchanges being deleted at once: the broker is left room for the spawns and
commands meanwhile."""
DELETE_TIMEOUT_S = 10.0
"""A deletion not answered within this long is a failure (tried again)."""
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
"""The pause after a failed deletion: `RETRY_FIRST_S`, doubled at each failure up to this."""

log = structlog.get_logger("vsm.operations.cleanup")


def terminated_within(agents: Iterable[AgentInfo], now: datetime, within: timedelta) -> list[str]:
    """The ids of `agents` terminated less than `within` before `now` (a time without a zone
    read as UTC)."""
    ids = []
    for agent in agents:
        at = agent.terminated_at
        if agent.state != "terminated" or at is None:
            continue
        if now - (at if at.tzinfo is not None else at.replace(tzinfo=UTC)) < within:
            ids.append(agent.agent_id)
    return ids


class Cleanup:
    """The agents whose results exchanges are still to be deleted (waiting, in order) or are
    being deleted now, and the one worker that deletes them."""

    def __init__(self, bus: Bus, in_flight: int = CLEANUPS_IN_FLIGHT) -> None:
        self.bus = bus
        self.waiting: dict[str, None] = {}
        """Agent ids in the order given (a dict: an ordered set)."""
        self.deleting: dict[str, asyncio.Task[None]] = {}
        self.failures = 0
        """Deletions that failed (each tried again), since start-up."""
        self._pausing: set[str] = set()
        """Agent ids whose deletion failed, waiting to be tried again."""
        self._claimed: set[str] = set()
        self._gate = asyncio.Semaphore(in_flight)
        self._news = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Deletions pending: waiting or under way."""
        return len(self.waiting) + len(self.deleting)

    def forget(self, agent_ids: Iterable[str]) -> None:
        """Delete these agents' results exchanges soon (an id already pending is not
        deleted twice)."""
        for agent_id in agent_ids:
            if agent_id not in self.deleting:
                self.waiting[agent_id] = None
        if self.waiting:
            self._idle.clear()
            self._news.set()
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._work(), name="s1-cleanup")

    async def claim(self, agent_id: str) -> None:
        """`agent_id` taken back for a new agent: its pending deletion dropped, one under
        way waited for (one failed is not tried again), so that what is declared next stays."""
        self.waiting.pop(agent_id, None)
        task = self.deleting.get(agent_id)
        if task is not None:
            self._claimed.add(agent_id)
            if agent_id in self._pausing:
                task.cancel()
            await asyncio.wait([task])
        self._settle()

    async def _work(self) -> None:
        while True:
            await self._news.wait()
            self._news.clear()
            while self.waiting:
                await self._gate.acquire()
                if not self.waiting:  # claimed meanwhile
                    self._gate.release()
                    break
                agent_id = next(iter(self.waiting))
                del self.waiting[agent_id]
                task = asyncio.create_task(self._delete(agent_id), name="s1-cleanup-one")
                self.deleting[agent_id] = task
            self._settle()

    async def _delete(self, agent_id: str) -> None:
        pause = RETRY_FIRST_S
        try:
            while not await self._deleted(agent_id) and agent_id not in self._claimed:
                self._pausing.add(agent_id)
                try:
                    await asyncio.sleep(pause)
                finally:
                    self._pausing.discard(agent_id)
                pause = min(2 * pause, RETRY_MAX_S)
        finally:
            self._claimed.discard(agent_id)
            self.deleting.pop(agent_id, None)
            self._gate.release()
            self._settle()

    async def _deleted(self, agent_id: str) -> bool:
        """One attempt: whether the exchange is gone now (a failure logged and counted)."""
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_S):
                await forget_agent(self.bus, agent_id)
        except Exception as error:
            self.failures += 1
            log.warning("cleanup_failed", agent_id=agent_id, reason=repr(error)[:500])
            return False
        return True

    def _settle(self) -> None:
        if not self.waiting and not self.deleting:
            self._idle.set()

    async def drain(self, timeout_s: float) -> int:
        """Shutting down: the deletions pending done within `timeout_s`, then the worker
        stopped; how many were left undone (logged: their exchanges stay on the broker)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        left = len(self)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for task in list(self.deleting.values()):
            task.cancel()
        if left:
            log.warning("cleanups_abandoned", count=left)
        return left
