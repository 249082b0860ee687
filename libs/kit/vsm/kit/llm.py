"""The one way to call Claude: the official `anthropic` client, metered and priced.

Every call is counted from the API's own `usage` and priced from the price table
(`vsm.kit.pricing`, setting `LLM_PRICES`), charged to a `Caller` (an agent, or a service),
its agent type and its viable system, in three metrics:

- `vsm_llm_tokens_total{vsm_id,agent_type,model,direction}`, direction one of `input`,
  `output`, `cache_write`, `cache_read`;
- `vsm_llm_cost_usd_total{vsm_id,agent_type,model}`;
- `vsm_llm_call_duration_seconds{agent_type,model,outcome}`, outcome `ok` or `error`.

Labels stay bounded: no agent ids; `model` is the price table's entry (`other` beyond it),
and `vsm_id` takes the first `MAX_VSM_IDS` viable systems seen, `other` after them. Each
call is also reported as an `LlmUsage` record (`vsm.contract.llm`) for S3's budgets.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import Field

from vsm.contract import topology
from vsm.contract.llm import LlmUsage, llm_usage_key
from vsm.kit.bus import Bus
from vsm.kit.genai import llm_call
from vsm.kit.labels import BoundedLabel
from vsm.kit.llm_allowance import LlmAllowance, LlmBudgetExhausted, worst_case

if TYPE_CHECKING:  # the SDK is imported where a client is made: only with an LLM configured
    from anthropic import AsyncAnthropic
    from anthropic.types import Message, Usage
from vsm.kit.pricing import MAX_MODELS, ModelName, ModelPrice, PriceTable, Tokens
from vsm.kit.settings import ServiceSettings

__all__ = [
    "DIRECTIONS",
    "DURATION_BUCKETS",
    "MAX_VSM_IDS",
    "Caller",
    "LlmMeter",
    "LlmSettings",
    "MeteredLlm",
    "Report",
    "service_meter",
    "tokens_of",
    "usage_reporter",
]

log = structlog.get_logger("vsm.kit.llm")

MAX_VSM_IDS = 64
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
DIRECTIONS = ("input", "output", "cache_write", "cache_read")


class LlmSettings(ServiceSettings):
    """The settings of a service that calls Claude: its prices."""

    llm_prices: dict[ModelName, ModelPrice] = Field(
        default_factory=dict,
        max_length=MAX_MODELS,
        description=(
            'Prices per model in USD per million tokens, JSON: {"<model>": {"input": 3, '
            '"output": 15, "cache_write": 3.75, "cache_read": 0.3}}; added to or replacing '
            "the defaults for current Anthropic models (`other`: any model not listed)."
        ),
    )

    def price_table(self) -> PriceTable:
        return PriceTable.with_defaults(self.llm_prices)


@dataclass(frozen=True)
class Caller:
    """Who is charged for a call: an agent (or a service's instance), its type (or the
    service's name) and its viable system."""

    agent_id: str
    agent_type: str
    vsm_id: str


Report = Callable[[LlmUsage, Caller], Awaitable[None]]


def tokens_of(usage: Usage) -> Tokens:
    return Tokens(
        input=usage.input_tokens,
        output=usage.output_tokens,
        cache_write=usage.cache_creation_input_tokens or 0,
        cache_read=usage.cache_read_input_tokens or 0,
    )


class LlmMeter:
    """The process's counts and prices of LLM calls, shared by every caller in it."""

    def __init__(
        self, prices: PriceTable, registry: CollectorRegistry, report: Report | None = None
    ) -> None:
        self.prices = prices
        self.report = report
        self.vsm_ids = BoundedLabel(MAX_VSM_IDS)
        labels = ["vsm_id", "agent_type", "model"]
        self.tokens = Counter(
            "vsm_llm_tokens",
            "LLM tokens by direction: input, output, cache_write, cache_read (the API's usage).",
            [*labels, "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "vsm_llm_cost_usd",
            "LLM spend in USD, priced from LLM_PRICES.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            "vsm_llm_call_duration_seconds",
            "Time of one Messages API call (each attempt), by outcome.",
            ["agent_type", "model", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def failed(self, caller: Caller, model: str, elapsed: float) -> None:
        self.duration.labels(caller.agent_type, self.prices.entry(model), "error").observe(elapsed)

    def record(
        self, caller: Caller, model: str, tokens: Tokens, elapsed: float, *, counted: bool = True
    ) -> LlmUsage:
        """Count (unless not `counted`) and price one answered call; the record to report."""
        entry = self.prices.entry(model)
        cost = self.prices.cost(entry, tokens)
        if counted:
            vsm_id = self.vsm_ids(caller.vsm_id)
            for direction in DIRECTIONS:
                count = getattr(tokens, direction)
                self.tokens.labels(vsm_id, caller.agent_type, entry, direction).inc(count)
            self.cost.labels(vsm_id, caller.agent_type, entry).inc(cost)
            self.duration.labels(caller.agent_type, entry, "ok").observe(elapsed)
        return LlmUsage(
            agent_id=caller.agent_id,
            agent_type=caller.agent_type,
            model=entry,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_write_tokens=tokens.cache_write,
            cache_read_tokens=tokens.cache_read,
            cost_usd=cost,
            duration_s=elapsed,
        )

    def refused(self, caller: Caller, model: str) -> LlmUsage:
        """The record of a call its allowance refused: unsent, nothing spent."""
        usage = self.record(caller, model, Tokens(), 0.0, counted=False)
        return usage.model_copy(update={"refused": True})

    async def told(self, usage: LlmUsage, caller: Caller) -> None:
        """Report the record; a report that fails is logged, the answer is not lost for it."""
        if self.report is None:
            return
        try:
            await self.report(usage, caller)
        except Exception as error:
            log.warning("llm_usage_not_reported", agent_id=caller.agent_id, error=repr(error))


@dataclass(frozen=True)
class MeteredLlm:
    """`messages.create` of the official client, charged to `caller`."""

    client: AsyncAnthropic
    meter: LlmMeter
    caller: Caller
    allowance: LlmAllowance | None = None
    """The caller's tokens per minute and daily cap (None: no limits)."""

    def on_behalf_of(self, caller: Caller, allowance: LlmAllowance | None = None) -> MeteredLlm:
        """The same client and meter, charging `caller`, within `allowance` if given."""
        return replace(self, caller=caller, allowance=allowance)

    def for_system(self, vsm_id: str) -> MeteredLlm:
        """The same caller, charging its calls to the viable system `vsm_id`."""
        return replace(self, caller=replace(self.caller, vsm_id=vsm_id))

    async def create(self, **request: Any) -> Message:
        """One Messages API call (no retries here: the callers decide what to retry), within
        the allowance: it waits for tokens, or fails with `LlmBudgetExhausted` unsent."""
        asked = str(request.get("model", ""))
        worst = 0.0
        if self.allowance is not None:
            if self.allowance.cap_usd is not None:
                price = self.meter.prices.price(self.meter.prices.entry(asked))
                worst = self.allowance.worst(worst_case(request, price))
            try:
                await self.allowance.admit(worst)
            except LlmBudgetExhausted:
                await self.meter.told(self.meter.refused(self.caller, asked), self.caller)
                raise
        started = time.monotonic()
        try:
            with llm_call(asked, request.get("max_tokens")) as answered:
                reply: Message = await self.client.messages.create(**request)
                answered(reply)
        except Exception:
            self.meter.failed(self.caller, asked, time.monotonic() - started)
            if self.allowance is not None:
                self.allowance.settle(worst)
            raise
        elapsed = time.monotonic() - started
        tokens = tokens_of(reply.usage)
        usage = self.meter.record(self.caller, reply.model or asked, tokens, elapsed)
        if self.allowance is not None:
            total = tokens.input + tokens.output + tokens.cache_write + tokens.cache_read
            self.allowance.settle(worst, total, usage.cost_usd)
        await self.meter.told(usage, self.caller)
        return reply

    async def close(self) -> None:
        await self.client.close()


def usage_reporter(bus: Bus) -> Report:
    """Publish each record on `vsm.control` (`llm.usage.<agent_type>`), for the caller's
    viable system and S3's budgets; not mandatory (S3's intake is bound to it)."""
    publisher = bus.publisher(
        topology.CONTROL,
        LlmUsage,
        routing_key=llm_usage_key("*"),
        description="What one LLM call cost: its tokens and their price, for S3's budgets.",
    )

    async def report(usage: LlmUsage, caller: Caller) -> None:
        await publisher.publish(
            usage,
            routing_key=llm_usage_key(caller.agent_type),
            vsm_id=caller.vsm_id,
            subject=caller.agent_id,
            mandatory=False,
        )

    return report


def service_meter(settings: LlmSettings, registry: CollectorRegistry, bus: Bus) -> LlmMeter:
    """A service's meter: its prices, its metrics, its usage records on `vsm.control`."""
    return LlmMeter(settings.price_table(), registry, usage_reporter(bus))
