"""One live agent: runs commands within its allocation, keeps its feelings and its measures.

Every agent is one of an SDK type (`vsm.agent`) made a host's type by
`agents.sdk.hosted_type`: its `SdkBehaviour` keeps the SDK's running agent, and each
`SdkCommand` has the SDK run the command (validation, context, error codes). What governance
needs is kept here. Commands beyond the allocation wait for a slot or for their turn under a
rate limit (never "busy"); S3 changes the allocation while the agent runs. A redelivered
command id is answered from memory instead of being done twice, as long as this process
remembers it; an effect outside that must survive a crash of the process is deduplicated
where it happens, by the command id passed on (`current_command`: the command's
`ctx.command_id`, e.g. the api agent's `Idempotency-Key`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from vsm.agent.failures import agent_error
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import CoordinationNote
from vsm.contract.operations import AgentCommand, AgentInfo, AuditType, CommandError, CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.kit.llm_allowance import LlmAllowance
from vsm.operations.agents.base import AgentConfig, CommandFailed, Crash, Feel
from vsm.operations.algedonics import AlgedonicMonitor
from vsm.operations.allocation import Rate, Slots
from vsm.operations.performance import PerformanceMeter

if TYPE_CHECKING:
    from vsm.operations.agents.sdk import SdkBehaviour, SdkCommand

RECENT_RESULTS = 1024
LAST_SHOWN = 100
"""Ids of the last commands handled that a state dump shows, oldest first."""
INBOX = 32

current_command: ContextVar[str | None] = ContextVar("current_command", default=None)
"""The id of the command a behaviour is executing: stable across redeliveries and retries."""


class NotStarted(Exception):
    """The agent stopped admitting work before this command started: the broker keeps it."""


NOT_STARTED = "the agent stopped admitting commands"


class Agent:
    def __init__(
        self,
        info: AgentInfo,
        config: AgentConfig,
        behaviour: SdkBehaviour,
        *,
        commands: Mapping[str, SdkCommand],
        window_s: float,
        feel: Feel,
        crash: Crash,
        llm_allowance: LlmAllowance | None = None,
    ) -> None:
        self.info = info
        self.llm_allowance = llm_allowance
        """Its LLM calls' tokens per minute (from S3's allocation) and daily cap."""
        self.behaviour = behaviour
        self.commands = commands
        self.slots = Slots(info.allocation)
        self.rate = Rate()
        self.llm_tokens_per_min: int | None = None
        self.inbox: deque[dict[str, Any]] = deque(maxlen=INBOX)
        self.monitor = AlgedonicMonitor(info.agent_id, config.algedonic)
        self.meter = PerformanceMeter(window_s)
        self.reported: UnitPerformance | None = None
        """The last performance report sent upward (`report_due`)."""
        self.recent: OrderedDict[str, CommandResult] = OrderedDict()
        self.under_way: dict[str, asyncio.Future[CommandResult]] = {}
        self.in_flight = 0
        self.waiting = 0
        self.repeats = 0
        """Deliveries of a command id already done or under way, answered with its result."""
        self.terminated = False
        self.stopping = asyncio.Event()
        self._admitting: set[asyncio.Task[Any]] = set()
        self.feel = feel
        self.crash = crash

    async def run(self, command: AgentCommand) -> CommandResult:
        """Do `command` once: a command id already done, or under way, gets that result."""
        earlier = self.recent.get(command.command_id) or self.under_way.get(command.command_id)
        if earlier is not None:
            self.repeats += 1
            return earlier if isinstance(earlier, CommandResult) else await asyncio.shield(earlier)
        done: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self.under_way[command.command_id] = done
        try:
            result = await self._run(command)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as error:
            done.set_exception(error)
            done.exception()  # retrieved: nobody may be waiting for it
            raise
        finally:
            del self.under_way[command.command_id]
        done.set_result(result)
        return result

    async def _run(self, command: AgentCommand) -> CommandResult:
        self.waiting += 1
        self.meter.arrived(time.monotonic())
        try:
            admitted = await self._admitted()
        finally:
            self.waiting -= 1
        if not admitted:
            raise NotStarted(command.command_id)
        try:
            self.in_flight += 1
            started = time.monotonic()
            outcome = await self._outcome(command)
            elapsed = time.monotonic() - started
            result = self._result(command, outcome, elapsed)
            self._remember(result)  # before the slot goes: in the order they were handled
        finally:
            self.in_flight -= 1
            self.slots.release()  # synchronous: a cancellation meanwhile cannot lose it
        await self._account(result.status == "ok", elapsed, command.command_type)
        return result

    async def _admitted(self) -> bool:
        """Wait for the turn under the rate and for a slot (then held); False if the agent
        stops admitting first, so a shutdown never waits for work that has not started.

        No task of its own and nothing awaited once the slot is taken, so a cancellation (a
        lost broker connection cancels every handler at once) never leaks a slot.
        """
        if self.stopping.is_set():
            return False
        task = asyncio.current_task()
        assert task is not None
        self._admitting.add(task)
        try:
            await self.rate.wait()
            await self.slots.__aenter__()
        except asyncio.CancelledError as cancelled:
            if cancelled.args != (NOT_STARTED,):
                raise
            task.uncancel()
            return False
        finally:
            self._admitting.discard(task)
        if self.stopping.is_set():  # a slot, but too late: the command is not started
            self.slots.release()
            return False
        return True

    def stop_admitting(self) -> None:
        """Commands still waiting to start go back to the broker; running ones finish."""
        self.stopping.set()
        for waiting in self._admitting:
            waiting.cancel(NOT_STARTED)

    async def _outcome(self, command: AgentCommand) -> dict[str, Any] | CommandError:
        if self.terminated:
            return CommandError(code="agent_terminated", message="the agent was terminated")
        declared = self.commands.get(command.command_type)
        if declared is None or command.command_type not in self.info.capabilities:
            return CommandError(
                code="capability_not_supported",
                message=f"{self.info.agent_type} does not support {command.command_type!r}",
                details={"capabilities": self.info.capabilities},
            )
        token = current_command.set(command.command_id)
        try:
            return await declared.perform(self.behaviour, command.data)
        except CommandFailed as failed:
            return CommandError(code=failed.code, message=failed.message, details=failed.details)
        except Exception as error:  # the SDK answers the agent's faults; this is the host's own
            # (its adapter): reported as a crash, and the agent lives on
            await self.crash(error)
            return agent_error(error)  # its class named; its text stays in the log
        finally:
            current_command.reset(token)

    def _result(
        self, command: AgentCommand, outcome: dict[str, Any] | CommandError, elapsed: float
    ) -> CommandResult:
        failed = isinstance(outcome, CommandError)
        return CommandResult(
            agent_id=self.info.agent_id,
            command_id=command.command_id,
            command_type=command.command_type,
            status="error" if failed else "ok",
            result=None if failed else outcome,
            error=outcome if failed else None,
            processing_time_ms=round(elapsed * 1000, 3),
            agent_type=self.info.agent_type,
        )

    def _remember(self, result: CommandResult) -> None:
        self.recent[result.command_id] = result
        while len(self.recent) > RECENT_RESULTS:
            self.recent.popitem(last=False)

    async def _account(self, ok: bool, elapsed: float, command: str) -> None:
        now = time.monotonic()
        self.meter.record(ok, elapsed, now, command)
        feeling = self.monitor.record(ok, now)
        if feeling is not None:
            await self.feel(feeling)

    async def allocate(self, change: AllocationChanged) -> None:
        """Take S3's new allocation: slots (never below 1), rate and token budget."""
        await self.slots.resize(change.resources.concurrency_slots)
        self.rate.change(change.max_rate_per_s)
        self.llm_tokens_per_min = change.resources.llm_tokens_per_min or None
        if self.llm_allowance is not None:
            self.llm_allowance.tokens_per_min = self.llm_tokens_per_min
            self.llm_allowance.share_usd = change.resources.llm_usd_per_day
        self.behaviour.allocate(change)  # the agent's commands see it (`ctx.allocation`)

    def receive(self, note: CoordinationNote, note_id: str) -> None:
        """Keep a note from another S1 unit (delivered by S2) where audits and work can see it."""
        self.inbox.append({"note_id": note_id, **note.model_dump(mode="json")})

    def performance(self) -> UnitPerformance:
        now = time.monotonic()
        self.monitor.tick(now)
        report = self.meter.report(
            self.info.agent_id,
            self.info.agent_type,
            self.slots.capacity,
            max(self.info.max_allocation, self.slots.capacity),
            now,
            max_rate_per_s=self.rate.per_s,
        )
        spent = self.llm_allowance.spent_today() if self.llm_allowance is not None else 0.0
        return report.model_copy(update={"llm_spent_today_usd": spent or None})

    def audit(self, audit_type: AuditType) -> dict[str, Any]:
        """What S3* sees: the whole state, the measures only, or the resources held."""
        if audit_type == "metrics_only":
            return {
                "performance": self.performance().model_dump(mode="json"),
                "algedonic": self.monitor.state(),
                "succeeded": self.meter.succeeded,
                "failed": self.meter.failed,
                "repeats": self.repeats,
            }
        resources = {
            "allocation": self.slots.capacity,
            "max_allocation": self.info.max_allocation,
            "max_rate_per_s": self.rate.per_s,
            "llm_tokens_per_min": self.llm_tokens_per_min,
            "llm_usd_per_day": self.llm_allowance.share_usd if self.llm_allowance else None,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "utilisation": self.in_flight / self.slots.capacity,
        }
        if audit_type == "resource_audit":
            return resources
        return {
            "agent": self.info.model_dump(mode="json"),
            "terminated": self.terminated,
            "resources": resources,
            "algedonic": self.monitor.state(),
            "behaviour": self.behaviour.state(),
            "recent_commands": len(self.recent),
            "last_commands": list(self.recent)[-LAST_SHOWN:],
            "repeats": self.repeats,
            "inbox": list(self.inbox),
        }
