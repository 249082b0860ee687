"""`sensor`: periodic readings from a source; rules over them raise algedonic signals.

Rules are the rule language's (docs/rules.md), or the earlier threshold form (`metric`,
`above`/`below`, `intensity`), which is the rule `metric > above or metric < below` raising
pain with the reason `threshold_breached`. Each sample is a `reading` event carrying the
values; a sample that fails is an `error` event (so `count(error) over 1m > 3` and the
silence of `count(reading) over 2m == 0` are rules too). Rules are compiled when the config
is validated: a rule that does not parse, names a reading the source does not have, or asks
for an unbounded window is refused at spawn, naming its field, line and column.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from vsm.agent import Agent, AgentIdentity, command
from vsm.contract.rules import (
    MAX_RULES,
    Fact,
    Firing,
    Limits,
    Outcome,
    Rule,
    RuleBook,
    RuleDeclaration,
    RuleError,
    any_reading,
    closed,
    compile_rules,
    parse_when,
)
from vsm.operations.agents.base import AgentConfig, CommandFailed, Crash, Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.readings import HOST_READINGS, host_metrics, http_metrics
from vsm.operations.agents.sdk import hosted_type

NAME = "sensor"
CRASH_BACKOFF_S = 1.0
THRESHOLD_REASON = "threshold_breached"
SIGNALS = frozenset({"pain", "pleasure"})
"""What a sensor's rule may do: alerts and observations are S4's."""


class Threshold(BaseModel):
    """The earlier form of a rule: one reading above or below a bound hurts."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: str = Field(min_length=1, max_length=256, pattern=r"^[^`\n]+$")
    above: float | None = None
    below: float | None = None
    intensity: float = Field(default=0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _has_a_bound(self) -> Threshold:
        if self.above is None and self.below is None:
            raise ValueError("a rule needs `above` or `below`")
        return self

    def rule(self, limits: Limits) -> Rule:
        """The same rule in the rule language."""
        bounds = [(">", self.above), ("<", self.below)]
        when = " or ".join(f"`{self.metric}` {op} {v!r}" for op, v in bounds if v is not None)
        return parse_when(self.metric, when, Outcome("pain", self.intensity), limits, any_reading)


def _form(value: Any) -> str:
    """Which form a declared rule is written in: a `metric` makes it a threshold."""
    if isinstance(value, Threshold) or (isinstance(value, dict) and "metric" in value):
        return "threshold"
    return "rule"


SensorRule = Annotated[
    Annotated[Threshold, Tag("threshold")] | Annotated[RuleDeclaration, Tag("rule")],
    Discriminator(_form),
]


class SensorConfig(AgentConfig):
    source: Literal["host", "http"] = "host"
    url: HttpUrl | None = None
    interval_s: float = Field(default=5.0, ge=0.05, le=3600)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    rules: list[SensorRule] = Field(default_factory=list, max_length=MAX_RULES)
    history: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _url_for_http(self) -> SensorConfig:
        if self.source == "http" and self.url is None:
            raise ValueError("an http sensor needs `url`")
        return self

    @model_validator(mode="after")
    def _rules_compile(self) -> Self:
        self.compiled()
        return self

    def compiled(self, limits: Limits | None = None) -> list[Rule]:
        """Every rule in the rule language; `ValidationError` at the field of a refused one."""
        limits = limits or Limits()
        vocabulary = (
            closed(HOST_READINGS, "a host sensor") if self.source == "host" else any_reading
        )
        declared = {i: r for i, r in enumerate(self.rules) if isinstance(r, RuleDeclaration)}
        compiled = dict(
            zip(
                declared,
                compile_rules(list(declared.values()), limits, vocabulary, SIGNALS),
                strict=True,
            )
        )
        for index, rule in enumerate(self.rules):
            if isinstance(rule, Threshold):
                compiled[index] = threshold_rule(rule, index, limits, self.source)
        return [compiled[i] for i in range(len(self.rules))]


def threshold_rule(rule: Threshold, index: int, limits: Limits, source: str) -> Rule:
    if source == "host" and rule.metric not in HOST_READINGS:
        raise refused(index, "metric", rule.metric, f"a host sensor reads no {rule.metric!r}")
    try:
        return rule.rule(limits)
    except RuleError as error:
        raise refused(index, "metric", rule.metric, error.message) from error


def refused(index: int, field: str, text: str, message: str) -> ValidationError:
    detail = PydanticCustomError("rule_invalid", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        "rules", [InitErrorDetails(type=detail, loc=("rules", index, field), input=text)]
    )


class Read(BaseModel):
    """A reading now takes nothing."""

    model_config = ConfigDict(extra="forbid")


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last: int = Field(default=10, ge=1, le=10_000, description="How many readings, newest last.")


class Reading(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: float = Field(description="Unix time of the sample.")
    values: dict[str, float]


class Sample(Reading):
    breached: list[str] = Field(description="The rules that have fired and still hold.")


class Readings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[Reading]


class Sensor(Agent[SensorConfig]):
    """Samples host metrics or an HTTP JSON endpoint, rules over its readings raising pain
    or pleasure."""

    name = NAME
    description = (
        "Samples host metrics or an HTTP JSON endpoint (within the operator's egress "
        "policy); rules over its readings (docs/rules.md) raise pain or pleasure."
    )

    def __init__(self, config: SensorConfig, identity: AgentIdentity) -> None:
        super().__init__(config, identity)
        self.outbound: Outbound | None = None
        """The host's egress client (`borrow`)."""
        self.crash: Crash | None = None
        self.readings: deque[dict[str, Any]] = deque(maxlen=config.history)
        self.book = RuleBook(config.compiled())
        self.thresholds = {r.metric for r in config.rules if isinstance(r, Threshold)}
        self.episodes = 0
        self._task: asyncio.Task[None] | None = None

    def borrow(self, resources: Resources, crash: Crash | None = None) -> None:
        """The host's egress client, and where a failing sample is reported."""
        self.outbound = resources.outbound
        self.crash = crash

    async def read(self) -> dict[str, float]:
        if self.config.source == "host":
            return host_metrics()
        if self.outbound is None:
            raise CommandFailed("agent_not_started", "the host lent this agent no egress client")
        return await http_metrics(self.outbound, NAME, str(self.config.url), self.config.timeout_s)

    async def sample(self, signal: bool) -> dict[str, Any]:
        values = await self.read()
        entry = {"at": time.time(), "values": values}
        self.readings.append(entry)
        if signal:
            self.signal(self.book.observe(Fact(time.monotonic(), "reading", values)))
        return {**entry, "breached": self.book.firing()}

    def signal(self, firings: list[Firing]) -> None:
        """Each rule that fired, felt (a new episode each time it fires)."""
        for firing in firings:
            rule, outcome = firing.rule, firing.rule.outcome
            self.episodes += 1
            legacy = rule.name in self.thresholds
            feel = self.pleasure if outcome.kind == "pleasure" else self.pain
            feel(
                THRESHOLD_REASON if legacy else rule.name,
                outcome.intensity,
                episode=f"sensor:{rule.name}:{self.episodes}",
                **{k: v for k, v in firing.evidence.items() if v is not None},
            )

    @command(name="read", description="take a reading now")
    async def read_now(self, request: Read) -> Sample:
        import httpx  # on a read only: a service whose agents never call out never loads it

        try:
            return Sample.model_validate(await self.sample(signal=False))
        except (httpx.HTTPError, ValueError) as error:
            raise CommandFailed("source_unavailable", str(error) or repr(error)) from error

    @command(description="the `last` N readings")
    async def history(self, request: History) -> Readings:
        return Readings.model_validate({"readings": list(self.readings)[-request.last :]})

    def audit(self) -> dict[str, Any]:
        return {
            "source": self.config.source,
            "readings": len(self.readings),
            "breached": self.book.firing(),
            "last": self.readings[-1] if self.readings else None,
        }

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sensor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.sample(signal=True)
            except Exception as error:  # a failing source is reported, the loop goes on
                self.signal(self.book.observe(Fact(time.monotonic(), "error")))
                await self._crashed(error)
                await asyncio.sleep(CRASH_BACKOFF_S)
            self.signal(self.book.tick(time.monotonic()))
            await asyncio.sleep(self.config.interval_s)

    async def _crashed(self, error: Exception) -> None:
        if self.crash is None:
            self.log.warning("sample_failed", error=repr(error))
        else:
            await self.crash(error)


def destinations(config: SensorConfig) -> list[tuple[str, str]]:
    return [("config.url", str(config.url))] if config.source == "http" else []


SENSOR = hosted_type(Sensor, built_in=True, destinations=destinations)
