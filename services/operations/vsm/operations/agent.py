"""One live agent: runs commands within its allocation, keeps its feelings and its measures.

Commands beyond the allocation wait for a slot or for their turn under a rate limit (never
"busy"); S3 changes the allocation while the agent runs. A redelivered command id is
answered from memory instead of being done twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import CoordinationNote
from vsm.contract.operations import AgentCommand, AgentInfo, AuditType, CommandError, CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.operations.agents.base import AgentConfig, Behaviour, CommandFailed
from vsm.operations.algedonics import AlgedonicMonitor, Feeling
from vsm.operations.allocation import Rate, Slots
from vsm.operations.performance import PerformanceMeter

RECENT_RESULTS = 1024
INBOX = 32
Feel = Callable[[Feeling], Awaitable[None]]
Crash = Callable[[BaseException], Awaitable[None]]


class Agent:
    def __init__(
        self,
        info: AgentInfo,
        config: AgentConfig,
        behaviour: Behaviour,
        *,
        window_s: float,
        feel: Feel,
        crash: Crash,
    ) -> None:
        self.info = info
        self.behaviour = behaviour
        self.slots = Slots(info.allocation)
        self.rate = Rate()
        self.llm_tokens_per_min: int | None = None
        self.inbox: deque[dict[str, Any]] = deque(maxlen=INBOX)
        self.monitor = AlgedonicMonitor(info.agent_id, config.algedonic)
        self.meter = PerformanceMeter(window_s)
        self.recent: OrderedDict[str, CommandResult] = OrderedDict()
        self.in_flight = 0
        self.waiting = 0
        self.terminated = False
        self.feel = feel
        self.crash = crash

    async def run(self, command: AgentCommand) -> CommandResult:
        known = self.recent.get(command.command_id)
        if known is not None:
            return known
        self.waiting += 1
        self.meter.arrived(time.monotonic())
        await self.rate.wait()
        async with self.slots:
            self.waiting -= 1
            self.in_flight += 1
            started = time.monotonic()
            try:
                outcome = await self._outcome(command)
            finally:
                self.in_flight -= 1
        elapsed = time.monotonic() - started
        result = self._result(command, outcome, elapsed)
        self._remember(result)
        await self._account(result.status == "ok", elapsed)
        return result

    async def _outcome(self, command: AgentCommand) -> dict[str, Any] | CommandError:
        if self.terminated:
            return CommandError(code="agent_terminated", message="the agent was terminated")
        if command.command_type not in self.info.capabilities:
            return CommandError(
                code="capability_not_supported",
                message=f"{self.info.agent_type} does not support {command.command_type!r}",
                details={"capabilities": self.info.capabilities},
            )
        try:
            return await self.behaviour.execute(command.command_type, command.data)
        except CommandFailed as failed:
            return CommandError(code=failed.code, message=failed.message, details=failed.details)
        except ValidationError as error:
            problems = error.errors(include_url=False, include_input=False)
            return CommandError(
                code="invalid_command",
                message="; ".join(
                    f"data.{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems[:5]
                ),
            )
        except Exception as error:  # the agent's own fault: reported as a crash, agent lives on
            await self.crash(error)
            return CommandError(code="agent_error", message=repr(error)[:4096])

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
        )

    def _remember(self, result: CommandResult) -> None:
        self.recent[result.command_id] = result
        while len(self.recent) > RECENT_RESULTS:
            self.recent.popitem(last=False)

    async def _account(self, ok: bool, elapsed: float) -> None:
        now = time.monotonic()
        self.meter.record(ok, elapsed, now)
        feeling = self.monitor.record(ok, now)
        if feeling is not None:
            await self.feel(feeling)

    async def allocate(self, change: AllocationChanged) -> None:
        """Take S3's new allocation: slots (never below 1), rate and token budget."""
        await self.slots.resize(change.resources.concurrency_slots)
        self.rate.change(change.max_rate_per_s)
        self.llm_tokens_per_min = change.resources.llm_tokens_per_min or None

    def receive(self, note: CoordinationNote, note_id: str) -> None:
        """Keep a note from another S1 unit (delivered by S2) where audits and work can see it."""
        self.inbox.append({"note_id": note_id, **note.model_dump(mode="json")})

    def performance(self) -> UnitPerformance:
        now = time.monotonic()
        self.monitor.tick(now)
        return self.meter.report(
            self.info.agent_id,
            self.info.agent_type,
            self.slots.capacity,
            max(self.info.max_allocation, self.slots.capacity),
            now,
            max_rate_per_s=self.rate.per_s,
        )

    def audit(self, audit_type: AuditType) -> dict[str, Any]:
        """What S3* sees: the whole state, the measures only, or the resources held."""
        if audit_type == "metrics_only":
            return {
                "performance": self.performance().model_dump(mode="json"),
                "algedonic": self.monitor.state(),
                "succeeded": self.meter.succeeded,
                "failed": self.meter.failed,
            }
        resources = {
            "allocation": self.slots.capacity,
            "max_allocation": self.info.max_allocation,
            "max_rate_per_s": self.rate.per_s,
            "llm_tokens_per_min": self.llm_tokens_per_min,
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
            "inbox": list(self.inbox),
        }
