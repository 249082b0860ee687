"""S2's dispatch of S1 work: the held items, served fairly, one command per free slot.

A command goes out as a request (`bus.ask` on `vsm.s1.commands`, key
`<agent_type>.<agent_id>.<command>`): the agent's answer frees the slot, and is forwarded to
the item's own `reply_to` when it had one. The loop wakes when work arrives, a slot frees or
capacity changes, and ticks while anything waits (rate buckets refill with time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from vsm.contract import topology
from vsm.contract.coordination import System2Snapshot
from vsm.contract.errors import ErrorReply, Unprocessable
from vsm.contract.operations import AgentCommand, command_key
from vsm.coordinator import intake
from vsm.coordinator.capacity import AgentCapacity, address
from vsm.coordinator.directory import Directory
from vsm.coordinator.holding import Held, Holding
from vsm.coordinator.journal import weights
from vsm.coordinator.lanes import Ticket
from vsm.coordinator.metrics import Metrics
from vsm.coordinator.system2 import System2
from vsm.kit.bus import Bus, NotRoutable, RequestFailed
from vsm.kit.consumer import Delivery
from vsm.kit.journal import StateJournal
from vsm.kit.rpc import RequestTimeout

log = structlog.get_logger("vsm.coordinator.dispatcher")
TICK_S = 0.05
DEAD_LETTER_BATCH = 100
UNROUTABLE_REST_S = 0.5
"""An agent that took no command (just spawned, its route not bound yet) gets no work of its
type for this long; the item waits in its lane for the next agent of the type."""


class Dispatcher:
    def __init__(
        self,
        bus: Bus,
        s2: System2,
        directory: Directory,
        metrics: Metrics,
        holding: Holding,
        *,
        journal: StateJournal[System2Snapshot],
        timeout_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.s2, self.directory, self.metrics = bus, s2, directory, metrics
        self.holding = holding
        self.journal = journal
        self.timeout_s, self.grace_s, self.clock = timeout_s, grace_s, clock
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """In the background: learn the agents first, then take work and serve it."""
        self._loop = asyncio.create_task(self._run(), name="s2-dispatch")

    async def stop(self) -> None:
        await self.holding.stop_consuming()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self.tasks:  # commands out: let their answers come back and be acked
            await asyncio.wait(self.tasks, timeout=self.grace_s)
        await self.holding.close()

    async def _run(self) -> None:
        await self.journal.opened.wait()
        await self.directory.sync()
        await self.holding.consume(self.on_delivery)
        while True:
            try:
                self._dispatch_ready()
            except Exception:  # a fault here must not stop S2 dispatching for good
                log.exception("dispatch_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S if self.s2.lanes.queued() else None):
                    await self.wake.wait()
            self.wake.clear()

    async def on_delivery(self, delivery: Delivery) -> None:
        try:
            envelope = intake.work_item(delivery.body)
            agent_id = envelope.data.agent_id
            if agent_id is not None and not await self.directory.known(agent_id):
                raise Unprocessable("unknown_agent", f"no running agent {agent_id!r}")
        except Unprocessable as bad:
            await delivery.dead_letter(bad)
            return
        except Exception as error:  # the registry did not answer: try the item again later
            await delivery.fail(error, pause_s=self.directory.retry_s)
            return
        if await self.holding.keep(Held(envelope, delivery)):
            item = envelope.data
            before = weights(self.s2).get(item.lane)
            waits_for = address(item, envelope.vsm_id)
            self.s2.lanes.add(item.lane, item.weight, waits_for, item.command_id, self.clock())
            self._gauge(item.lane)
            self.wake.set()
            if before != item.weight:  # a new lane, or a new weight: a decision to keep
                await self._keep()

    async def _keep(self) -> None:
        """Journal the state; a failure is logged, and the next report interval retries."""
        try:
            await self.journal.keep()
        except Exception as error:
            log.warning("journal_write_failed", error=repr(error))

    def _dispatch_ready(self) -> None:
        now, fleet = self.clock(), self.s2.fleet
        while (ticket := self.s2.lanes.next(now, lambda a: fleet.can_take(a, now))) is not None:
            agent = fleet.pick(ticket.agent_id, now)
            assert agent is not None  # the lane handed the item out because one could take it
            agent.take(now)
            self._gauge(ticket.lane)
            self.metrics.dispatched(ticket.lane)
            task = asyncio.create_task(self._dispatch(ticket, agent))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _dispatch(self, ticket: Ticket, agent: AgentCapacity) -> None:
        held = self.holding.items.get(ticket.command_id)
        if held is None:  # settled meanwhile (e.g. its agent was retired)
            agent.release()
            return
        item, settle = held.envelope.data, self.holding.settle
        command = AgentCommand(
            agent_id=agent.agent_id,
            command_id=item.command_id,
            command_type=item.command_type,
            data=item.data,
        )
        try:
            answer = await self.bus.ask(
                command,
                exchange=topology.S1_COMMANDS,
                routing_key=command_key(agent.agent_type, agent.agent_id, item.command_type),
                cause=held.envelope,
                timeout=self.timeout_s,
            )
            await settle(item.command_id, answer=answer)
        except NotRoutable:
            if item.agent_id is None:  # another agent of the type may take it: back in line
                agent.rest(self.clock() + UNROUTABLE_REST_S)
                lane = ticket.lane
                self.s2.lanes.add(lane, item.weight, ticket.agent_id, item.command_id, self.clock())
                return
            gone = Unprocessable("unknown_agent", f"agent {agent.agent_id!r} takes no commands")
            await settle(item.command_id, bad=gone)
        except (RequestFailed, RequestTimeout) as failed:
            error = (
                failed.reply
                if isinstance(failed, RequestFailed)
                else ErrorReply(code="timeout", message=str(failed))
            )
            await settle(item.command_id, answer=self.bus.envelope(error, cause=held.envelope))
        except Exception as error:  # the broker is away: the item goes back to the queue
            held.delivery.report(error)
            await self.holding.requeue(item.command_id)
        finally:
            agent.release()
            self.wake.set()

    async def drop_agent(self, agent_id: str) -> None:
        """The agent is gone: dead-letter what waits for it, with the reason."""
        tickets = self.s2.lanes.remove_agent(agent_id)
        for lane in {ticket.lane for ticket in tickets}:
            self._gauge(lane)
        bad = Unprocessable("agent_terminated", f"agent {agent_id!r} was terminated")
        for start in range(0, len(tickets), DEAD_LETTER_BATCH):
            batch = tickets[start : start + DEAD_LETTER_BATCH]
            await asyncio.gather(*(self.holding.settle(t.command_id, bad=bad) for t in batch))

    def _gauge(self, lane: str) -> None:
        known = self.s2.lanes.lanes.get(lane)
        self.metrics.queued(lane, known.size if known else 0)
