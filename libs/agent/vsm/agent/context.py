"""What a command sees of the world while it runs: the `Context`.

Its ids (command, causation, trace), the agent's allocation as S3 sets it now, a way to say
"this hurts" or "this goes well" (a `Feeling`), progress for long work, a logger bound to
the agent and the command, and the `Cancellation` that fires when the command's deadline
passes or S3 throttles the agent away. Feelings and progress are intents: the host
publishes them; nothing here touches a broker.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic_core import to_jsonable_python

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.operations import AGENT_ID_PATTERN

__all__ = [
    "MAX_FEELINGS",
    "AgentIdentity",
    "AgentLog",
    "Allocation",
    "Cancellation",
    "CommandCancelled",
    "Context",
    "Feeling",
    "Intent",
    "Llm",
    "Progress",
    "agent_log",
    "feeling",
]

MAX_EPISODE = 128
MAX_FEELINGS = 16
"""Feelings one command may raise; more are dropped (a loop must not flood S5)."""
REASON_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
"""A feeling's reason: a stable code (`upstream_down`), as a rule's name is."""


class Llm(Protocol):
    """The LLM client a host lends an agent: one call of Anthropic's Messages API, with the
    API's own arguments (`model`, `max_tokens`, `messages`, `tools`, ...), answering its
    `Message`. The host's client is metered and charged to the agent: a call waits for tokens
    under S3's allocation, or fails unsent once the agent's daily share is spent."""

    async def create(self, **request: Any) -> Any: ...


@dataclass(frozen=True)
class AgentIdentity:
    """Which agent an instance is: its id, its type, its optional stable name and the viable
    system it works for."""

    agent_id: str
    agent_type: str
    name: str | None = None
    vsm_id: str = "root"

    def __post_init__(self) -> None:
        if not re.fullmatch(AGENT_ID_PATTERN, self.agent_id):
            raise ValueError(f"agent_id must match {AGENT_ID_PATTERN}: {self.agent_id!r}")


@dataclass(frozen=True)
class Allocation:
    """The resources S3 grants the agent now: commands at once, commands per second (None:
    no limit), LLM tokens per minute and USD per day (None: not budgeted)."""

    concurrency_slots: int = 1
    max_rate_per_s: float | None = None
    llm_tokens_per_min: int | None = None
    llm_usd_per_day: float | None = None

    @classmethod
    def from_change(cls, change: AllocationChanged) -> Allocation:
        """The allocation an `AllocationChanged` from S3 grants."""
        return cls(
            concurrency_slots=change.resources.concurrency_slots,
            max_rate_per_s=change.max_rate_per_s,
            llm_tokens_per_min=change.resources.llm_tokens_per_min or None,
            llm_usd_per_day=change.resources.llm_usd_per_day,
        )

    @property
    def throttled_away(self) -> bool:
        """No slot left: running commands are cancelled, none is started."""
        return self.concurrency_slots == 0


@dataclass(frozen=True)
class Feeling:
    """Pain or pleasure an agent raises on purpose, for the host to send to S5: in a command
    (`ctx.pain`, its `command_id` set) or outside any (`Agent.pain`, `command_id` None).
    `episode` says "still the same trouble" (None: the host groups by agent and reason)."""

    command_id: str | None
    kind: Literal["pain", "pleasure"]
    intensity: float
    reason: str
    context: dict[str, Any] = field(default_factory=dict)
    episode: str | None = None

    def signal(self, origin: str, episode: str | None = None) -> AlgedonicSignal:
        """The algedonic signal this feeling is on the wire."""
        context = dict(self.context)
        if self.command_id is not None:
            context["command_id"] = self.command_id
        return AlgedonicSignal(
            kind=self.kind,
            intensity=self.intensity,
            origin=origin,
            reason=self.reason,
            episode=episode or self.episode,
            context=context,
        )


def feeling(
    kind: Literal["pain", "pleasure"],
    reason: str,
    intensity: float,
    context: dict[str, Any],
    *,
    command_id: str | None = None,
    episode: str | None = None,
) -> Feeling:
    """A feeling, checked: `reason` a stable code, `intensity` within 0..1."""
    if not re.fullmatch(REASON_PATTERN, reason):
        raise ValueError(f"a feeling's reason is a code matching {REASON_PATTERN}: {reason!r}")
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"a feeling's intensity is between 0 and 1: {intensity}")
    if episode is not None and not 0 < len(episode) <= MAX_EPISODE:
        raise ValueError(f"a feeling's episode is 1 to {MAX_EPISODE} characters")
    return Feeling(command_id, kind, intensity, reason, to_jsonable_python(context), episode)


@dataclass(frozen=True)
class Progress:
    """How far a long command has come: `done` of `total` (None: unknown), and a note."""

    command_id: str
    done: float
    total: float | None = None
    message: str = ""


Intent = Feeling | Progress


class CommandCancelled(Exception):
    """Raised by `Context.check` once the command is cancelled; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancellation:
    """Fires once, with a reason: `deadline` when the command's time is up, `throttled` when
    S3 takes the agent's last slot, or whatever the host says (`cancel`)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        """`time.monotonic()` by which the command must be done (None: no deadline)."""
        self._fired = asyncio.Event()
        self._reason: str | None = None
        self._watchers: list[asyncio.Future[None]] = []

    def cancel(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
            self._fired.set()
            for watcher in self._watchers:
                if not watcher.done():
                    watcher.set_result(None)

    def fired(self) -> asyncio.Future[None]:
        """A future done once it fires by `cancel` (the deadline alone is for the one who
        waits to time, by `remaining_s`): a wait with no task of its own."""
        watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._reason is not None:
            watcher.set_result(None)
        else:
            self._watchers.append(watcher)
        return watcher

    @property
    def reason(self) -> str | None:
        """Why it fired (None: it has not)."""
        if self._reason is None and self.remaining_s == 0.0:
            self.cancel("deadline")
        return self._reason

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    @property
    def remaining_s(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    async def wait(self) -> str:
        """Return the reason once it fires (the deadline included)."""
        try:
            async with asyncio.timeout_at(self._loop_deadline()):
                await self._fired.wait()
        except TimeoutError:
            self.cancel("deadline")
        assert self._reason is not None
        return self._reason

    def _loop_deadline(self) -> float | None:
        remaining = self.remaining_s
        return None if remaining is None else asyncio.get_running_loop().time() + remaining


_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def agent_log(identity: AgentIdentity) -> AgentLog:
    """The log of one agent: the logger of its type, bound to its id and type."""
    return AgentLog(
        logging.getLogger(f"vsm.agent.{identity.agent_type}"),
        {"agent_id": identity.agent_id, "agent_type": identity.agent_type},
    )


class AgentLog:
    """Structured logs bound to the agent (and the command): `log.info("fetched", rows=3)`.

    Records go to the standard logger `vsm.agent.<type>` with the bound fields as record
    attributes (`agent_id`, `agent_type`, `command`, `command_id`, `trace_id`, and yours),
    where a structured formatter renders them."""

    def __init__(self, logger: logging.Logger, fields: dict[str, Any]) -> None:
        self.logger = logger
        self.fields = fields

    def bind(self, **fields: Any) -> AgentLog:
        return AgentLog(self.logger, {**self.fields, **fields})

    def log(self, level: int, event: str, /, *, exc_info: bool = False, **fields: Any) -> None:
        if self.logger.isEnabledFor(level):
            extra = {
                (f"{k}_" if k in _RESERVED else k): v for k, v in {**self.fields, **fields}.items()
            }
            self.logger.log(level, event, extra=extra, exc_info=exc_info, stacklevel=3)

    def debug(self, event: str, /, **fields: Any) -> None:
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self.log(logging.ERROR, event, **fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """An error with the exception being handled (its trace stays in this log)."""
        self.log(logging.ERROR, event, exc_info=True, **fields)


class Context:
    """Given to a command that asks for it (a parameter annotated `Context`)."""

    def __init__(
        self,
        identity: AgentIdentity,
        command: str,
        command_id: str,
        *,
        allocation: Callable[[], Allocation],
        cancellation: Cancellation,
        log: AgentLog,
        causation_id: str | None = None,
        trace_id: str | None = None,
        on_intent: Callable[[Intent], None] | None = None,
        llm: Llm | None = None,
    ) -> None:
        self.identity = identity
        self.llm = llm
        """The host's LLM client for this agent (None: the host has no LLM configured)."""
        self.command = command
        self.command_id = command_id
        self.causation_id = causation_id
        """The id of the message that carried the command (its envelope's id)."""
        self.trace_id = trace_id
        self.cancellation = cancellation
        self.log = log
        self.intents: list[Intent] = []
        """What the command raised, in order (feelings up to `MAX_FEELINGS`, the last progress)."""
        self._allocation = allocation
        self._on_intent = on_intent
        self._feelings = 0

    @property
    def allocation(self) -> Allocation:
        """The agent's allocation now (S3 may change it while the command runs)."""
        return self._allocation()

    @property
    def cancelled(self) -> bool:
        return self.cancellation.cancelled

    @property
    def remaining_s(self) -> float | None:
        """Seconds before the deadline (None: none)."""
        return self.cancellation.remaining_s

    def check(self) -> None:
        """Raise `CommandCancelled` if the command is cancelled: call it between steps."""
        reason = self.cancellation.reason
        if reason is not None:
            raise CommandCancelled(reason)

    def pain(self, reason: str, intensity: float = 0.5, **context: Any) -> None:
        """Tell S5 this hurts: `reason` is a stable code (`upstream_down`), intensity 0..1."""
        self._feel("pain", reason, intensity, context)

    def pleasure(self, reason: str, intensity: float = 0.5, **context: Any) -> None:
        """Tell S5 this goes well (`backlog_cleared`)."""
        self._feel("pleasure", reason, intensity, context)

    def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """How far the command has come; only the last report is kept in the outcome."""
        if done < 0 or (total is not None and not 0 <= done <= total):
            raise ValueError(f"progress must be 0 <= done <= total: {done} of {total}")
        report = Progress(self.command_id, done, total, message[:256])
        self.intents = [i for i in self.intents if not isinstance(i, Progress)] + [report]
        self._emit(report)

    def _feel(
        self, kind: Literal["pain", "pleasure"], reason: str, intensity: float, context: Any
    ) -> None:
        felt = feeling(kind, reason, intensity, context, command_id=self.command_id)
        self._feelings += 1
        if self._feelings > MAX_FEELINGS:
            return
        self.intents.append(felt)
        self._emit(felt)

    def _emit(self, intent: Intent) -> None:
        if self._on_intent is not None:
            try:
                self._on_intent(intent)
            except Exception:
                self.log.exception("the host failed to take an intent")
