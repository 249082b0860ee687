"""The agents living in this replica: their consumers, results, feelings and measures.

Each agent's queue has a single active consumer, so with several replicas every replica
consumes every agent's queue but only one at a time gets its messages; when it dies the
broker hands the queue (and its unacknowledged messages) to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import CoordinationNote
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.operations import (
    MAX_PAYLOAD_BYTES,
    AgentCommand,
    AgentInfo,
    AuditReport,
    AuditRequest,
    CommandResult,
    command_queue,
)
from vsm.contract.topology import Queue
from vsm.kit.bus import Bus
from vsm.kit.consumer import Delivery, DirectConsumers, LeaveQueued
from vsm.kit.llm_allowance import LlmAllowance
from vsm.kit.locks import KeyedLocks
from vsm.operations.agent import Agent, NotStarted
from vsm.operations.agents.base import Resources
from vsm.operations.agents.catalog import AGENT_TYPES
from vsm.operations.algedonics import Feeling
from vsm.operations.metrics import Metrics, declared_command, narrow_command_key
from vsm.operations.outlets import Outlets
from vsm.operations.performance import report_due
from vsm.operations.wiring import declare_agent, forget_agent, unbind_agent

log = structlog.get_logger("vsm.operations.host")

CRASH_REPORT_INTERVAL_S = 60.0
"""At most one `agent_crashed` event per agent per minute: the registry log must not flood."""

CrashReport = Callable[[AgentInfo, BaseException], Awaitable[None]]


def check_size(body: bytes) -> None:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise Unprocessable(
            "payload_too_large", f"{len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )


def check_addressee(command: AgentCommand, agent_id: str) -> None:
    """A command that names an agent runs only on that agent (the name is signed with it)."""
    if command.agent_id is not None and command.agent_id != agent_id:
        raise Unprocessable(
            "misaddressed", f"the command is for agent {command.agent_id!r}, not {agent_id!r}"
        )


class AgentHost:
    def __init__(
        self,
        bus: Bus,
        consumers: DirectConsumers,
        resources: Resources | None,
        window_s: float,
        instance: str,
        *,
        refresh_s: float | None = None,
    ) -> None:
        self.bus = bus
        self.consumers = consumers
        bus.telemetry.routes.narrowers.append(narrow_command_key)
        agents = command_queue("{agent_id}")
        bus.interface.receives(
            agents, AgentCommand, AuditRequest, AllocationChanged, CoordinationNote
        )
        bus.interface.answers(agents, CommandResult, AuditReport)
        self.outlets = Outlets(bus)
        self.instance = instance
        self.resources = resources
        self.window_s = window_s
        self.refresh_every = max(1, round((refresh_s or window_s) / window_s))
        """Reporting ticks between two reports of an agent that has nothing new to say."""
        self.agents: dict[str, Agent] = {}
        self.locks = KeyedLocks()
        self.crash_reported: dict[str, float] = {}
        """When each live agent's last crash was reported (forgotten when it retires)."""
        self.report_crash: CrashReport | None = None
        self.metrics: Metrics | None = None
        self._reporter: asyncio.Task[None] | None = None

    async def sync(self, info: AgentInfo) -> None:
        """Make this replica match the registry's view of one agent (idempotent)."""
        async with self.locks.hold(info.agent_id):
            live = self.agents.get(info.agent_id)
            if info.state == "running" and live is None:
                await self._activate(info)
            elif info.state == "running" and live is not None:
                live.info = info
            elif info.state == "terminated" and live is not None:
                await self._retire(live)

    async def _activate(self, info: AgentInfo) -> None:
        if self.resources is None:
            raise RuntimeError("agents need the clients built at start-up")
        kind = AGENT_TYPES[info.agent_type]
        config = kind.config_model.model_validate(info.config)
        allowance = LlmAllowance()
        resources = self.resources.charged_to(
            info.agent_id, info.agent_type, info.vsm_id, allowance
        )
        behaviour = kind.build(config, resources)
        agent: Agent
        agent = Agent(
            info,
            config,
            behaviour,
            commands=kind.commands,
            window_s=self.window_s,
            feel=lambda feeling: self._feel(agent, feeling),
            crash=lambda error: self._crashed(agent, error),
            llm_allowance=allowance,
        )
        await declare_agent(self.bus, info.agent_id)
        self.agents[info.agent_id] = agent
        await self._consume(agent)
        await behaviour.start(agent.feel, agent.crash)
        log.info("agent_activated", agent_id=info.agent_id, agent_type=info.agent_type)

    async def _consume(self, agent: Agent) -> None:
        """One consumer per agent queue, dispatching on the envelope's type. Consumed directly
        (not a FastStream subscriber): an agent comes and goes at run time, and its commands
        are the hottest traffic here. Answers go out from the handler, a command's before its
        result is published."""

        async def on_message(envelope: Envelope[Any], delivery: Delivery) -> None:
            check_size(delivery.body)
            match envelope.data:
                case AgentCommand() as command:
                    check_addressee(command, agent.info.agent_id)
                    await self._command(agent, command, envelope, delivery)
                case AuditRequest(audit_type=audit_type):
                    report = AuditReport(
                        agent_id=agent.info.agent_id,
                        agent_type=agent.info.agent_type,
                        audit_type=audit_type,
                        report={**agent.audit(audit_type), "instance": self.instance},
                    )
                    await self.outlets.answer(
                        delivery.reply_to, delivery.correlation_id, report, envelope
                    )
                case AllocationChanged() as change:
                    await agent.allocate(change)
                    log.info(
                        "allocation_changed",
                        agent_id=agent.info.agent_id,
                        slots=agent.slots.capacity,
                        max_rate_per_s=agent.rate.per_s,
                        reason=change.reason,
                    )
                case CoordinationNote() as note:
                    agent.receive(note, envelope.id)
                case _:
                    raise Unprocessable("unexpected_type", f"no handler here for {envelope.type!r}")

        await self.consumers.consume(command_queue(agent.info.agent_id), on_message)

    async def _command(
        self,
        agent: Agent,
        command: AgentCommand,
        envelope: Envelope[Any],
        delivery: Delivery,
    ) -> None:
        """Run it; answer the requester first (it waits), then tell the observers; the
        delivery is acked once both are out."""
        try:
            result = await agent.run(command)
        except NotStarted as stopping:  # neither acked nor nacked: the broker keeps it
            raise LeaveQueued from stopping
        await self.outlets.answer(delivery.reply_to, delivery.correlation_id, result, envelope)
        await self.outlets.result(agent.info, result, envelope)
        self._count(agent, result)

    def _count(self, agent: Agent, result: CommandResult) -> None:
        if self.metrics is None:
            return
        info = agent.info
        command = declared_command(info.agent_type, result.command_type)
        labels = (info.vsm_id, info.agent_type, command, result.status)
        self.metrics.commands.labels(*labels).inc()
        seconds = result.processing_time_ms / 1000
        self.metrics.duration.labels(info.agent_type, command).observe(seconds)

    async def _retire(self, agent: Agent) -> None:
        agent.terminated = True
        agent_id = agent.info.agent_id
        queue = command_queue(agent_id)
        await unbind_agent(self.bus, agent_id)
        await self.consumers.cancel(queue)
        await agent.behaviour.stop()
        await self._drain(queue)
        await forget_agent(self.bus, agent_id)
        self.agents.pop(agent_id, None)
        self.crash_reported.pop(agent_id, None)
        log.info("agent_retired", agent_id=agent_id)

    async def _drain(self, queue: Queue) -> None:
        """Dead-letter what is still queued for a terminated agent, answering its requesters."""
        bad = Unprocessable("agent_terminated", "the agent was terminated")
        await self.outlets.dead_letter_queued(queue, bad)

    async def _feel(self, agent: Agent, feeling: Feeling) -> None:
        signal = AlgedonicSignal(
            kind=feeling.kind,
            intensity=feeling.intensity,
            origin=f"operations/{agent.info.agent_id}",
            reason=feeling.reason,
            episode=feeling.episode,
            context={
                **feeling.context,
                "agent_id": agent.info.agent_id,
                "agent_type": agent.info.agent_type,
            },
        )
        await self.outlets.felt(agent.info, signal)
        log.warning("algedonic_signal", agent_id=agent.info.agent_id, kind=feeling.kind)

    async def _crashed(self, agent: Agent, error: BaseException) -> None:
        log.error("agent_crashed", agent_id=agent.info.agent_id, error=repr(error), exc_info=error)
        now = time.monotonic()
        last = self.crash_reported.get(agent.info.agent_id)
        if self.report_crash is None or (last is not None and now - last < CRASH_REPORT_INTERVAL_S):
            return
        self.crash_reported[agent.info.agent_id] = now
        try:
            await self.report_crash(agent.info, error)
        except Exception as failure:
            log.error("crash_report_failed", error=repr(failure))

    # Performance reports ----------------------------------------------------------------
    def start_reporting(self) -> None:
        self._reporter = asyncio.create_task(self._report_forever(), name="s1-performance")

    async def _report_forever(self) -> None:
        """Each interval, every agent's report that has something new to say (or is due for a
        refresh: `report_due`) goes to `vsm.control`."""
        tick = 0
        while True:
            await asyncio.sleep(self.window_s)
            tick += 1
            for agent in list(self.agents.values()):
                if agent.terminated:
                    continue
                report = agent.performance()
                if not report_due(report, agent.reported, tick, self.refresh_every):
                    continue
                try:
                    # Not mandatory: S3 binds to these reports when it wants them; a report
                    # nobody reads is no error; one that failed is tried again next interval.
                    await self.outlets.performance(agent.info, report)
                    agent.reported = report
                except Exception as error:
                    log.warning("performance_report_failed", error=repr(error))

    async def stop(self) -> None:
        """Shut down within the grace period: the commands running finish and are acked;
        those waiting for a slot, and whatever arrives now, stay with the broker (unacked,
        so redelivered to the next consumer) instead of being run first."""
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        for agent in self.agents.values():
            agent.stop_admitting()
        await self.consumers.stop()
        for agent in self.agents.values():
            await agent.behaviour.stop()
