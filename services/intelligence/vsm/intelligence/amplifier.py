"""LLM variety amplification: Claude reads an alert and explains it, with scenarios.

Never on the critical path: the alert is published first; the explanation follows in a
background task, bounded in number, and a failing or absent LLM only means no explanation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from vsm.contract.intelligence import AlertExplanation, IntelligenceAlert
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm

if TYPE_CHECKING:  # the SDK itself only when a client is made (an LLM configured)
    from anthropic.types import MessageParam, ToolChoiceToolParam, ToolParam

log = structlog.get_logger("vsm.intelligence.amplifier")

TOOL = "explain_alert"
SYSTEM_PROMPT = (
    "You are System 4 (intelligence) of a Viable System Model runtime. You receive one alert "
    "with the statistical evidence behind it. Explain in plain language what is most likely "
    "happening and why it matters to the organisation, then propose up to three short, "
    "concrete scenarios of what may happen next. Call the explain_alert tool with your answer."
)
FORCED: ToolChoiceToolParam = {"type": "tool", "name": TOOL}
TOOLS: list[ToolParam] = [
    {
        "name": TOOL,
        "description": "Report the explanation of the alert and the scenarios it suggests.",
        "input_schema": {
            "type": "object",
            "properties": {
                "explanation": {"type": "string"},
                "scenarios": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            },
            "required": ["explanation"],
        },
    }
]

Publish = Callable[[AlertExplanation], Awaitable[Any]]


def prompt(alert: IntelligenceAlert) -> str:
    facts = alert.model_dump(mode="json", exclude={"alert_id"})
    return "Alert from System 4:\n" + json.dumps(facts, indent=2, sort_keys=True)


def parse(alert_id: str, model: str, content: list[Any]) -> AlertExplanation | None:
    """The tool call's answer, else the text; None when the model said nothing usable."""
    for block in content:
        if getattr(block, "type", None) == "tool_use" and block.name == TOOL:
            answer = block.input if isinstance(block.input, dict) else {}
            text = str(answer.get("explanation", "")).strip()
            scenarios = [str(s)[:1024] for s in answer.get("scenarios") or [] if str(s).strip()]
            if text:
                return AlertExplanation(
                    alert_id=alert_id,
                    explanation=text[:8192],
                    scenarios=scenarios[:10],
                    model=model,
                )
    text = "\n".join(getattr(b, "text", "") for b in content if getattr(b, "type", None) == "text")
    if not text.strip():
        return None
    return AlertExplanation(alert_id=alert_id, explanation=text.strip()[:8192], model=model)


class Amplifier:
    """Explains alerts with Claude when a client is configured; otherwise does nothing."""

    def __init__(
        self, client: MeteredLlm | None, *, model: str, max_pending: int, max_tokens: int = 1024
    ) -> None:
        self.client = client
        self.model = model
        self.max_pending = max_pending
        self.max_tokens = max_tokens
        self.tasks: set[asyncio.Task[None]] = set()
        self.explained = 0
        self.failed = 0
        self.skipped = 0

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def explain_later(self, alert: IntelligenceAlert, publish: Publish, vsm_id: str) -> None:
        """Start explaining `alert` (about the viable system `vsm_id`, charged for it) in the
        background; skipped when too many are in flight."""
        if self.client is None:
            return
        if len(self.tasks) >= self.max_pending:
            self.skipped += 1
            log.warning("explanation_skipped", alert_id=alert.alert_id, pending=len(self.tasks))
            return
        explaining = self._explain(alert, publish, vsm_id)
        task = asyncio.create_task(explaining, name=f"explain-{alert.alert_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def explain(self, alert: IntelligenceAlert, vsm_id: str) -> AlertExplanation | None:
        if self.client is None:
            return None
        ask: list[MessageParam] = [{"role": "user", "content": prompt(alert)}]
        reply = await self.client.for_system(vsm_id).create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=SYSTEM_PROMPT,
            tools=TOOLS,
            tool_choice=FORCED,
            messages=ask,
        )
        return parse(alert.alert_id, reply.model, list(reply.content))

    async def _explain(self, alert: IntelligenceAlert, publish: Publish, vsm_id: str) -> None:
        try:
            explanation = await self.explain(alert, vsm_id)
            if explanation is None:
                raise ValueError("the model returned no explanation")
            await publish(explanation)
            self.explained += 1
        except Exception as error:  # the LLM is an amplifier, not a dependency
            self.failed += 1
            log.warning("explanation_failed", alert_id=alert.alert_id, error=repr(error))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.client is not None:
            await self.client.close()

    def details(self) -> dict[str, Any]:
        return {
            "llm": "enabled" if self.enabled else "disabled",
            "explained": self.explained,
            "explanations_failed": self.failed,
        }


def create_client(
    api_key: str,
    base_url: str | None,
    timeout_s: float,
    max_retries: int,
    *,
    meter: LlmMeter,
    caller: Caller,
) -> MeteredLlm:
    """The metered client; the SDK's retries happen within one metered call."""
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(
        api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
    )
    return MeteredLlm(client, meter, caller)
