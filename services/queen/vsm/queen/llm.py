"""The LLM policy proposer: Claude answers through a tool whose input schema is the policy
schema. Its output is only a proposal: S5 validates it like any other policy.

The call is retried here rather than by the SDK, so that what cannot pass is not retried:
408, 429 (a rate limit), 5xx, 529 and a broken connection (also a 200 whose body breaks off)
get `LLM_MAX_RETRIES` more attempts with exponential backoff and full jitter (or the server's
`retry-after`), all within `LLM_TIMEOUT_S`; a refused key (401/403), a spend limit and any
other 4xx fail at once, with a message that says which. Either way synthesis falls back to
the rules.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.policy import (
    AdaptationPolicy,
    GovernancePolicy,
    PolicyRecord,
    ResourceAllocationPolicy,
    ThrottlePolicy,
)
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm
from vsm.queen.rules import Anomaly

if TYPE_CHECKING:
    import anthropic

TOOL_NAME = "propose_policy"
MAX_TOKENS = 2048
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
BASE_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
SPEND_LIMIT_CODES = frozenset({"enforced_spend_limit_reached"})
SPEND_LIMIT_WORDS = ("usage limits", "spend limit")
SYSTEM = (
    "You are System 5 (policy and identity) of a Viable System Model runtime. Given an "
    "anomaly, the current policies and the identity, propose exactly one policy by calling "
    f"the {TOOL_NAME} tool. Respect every identity constraint; prefer the least drastic "
    "policy that restores viability. The identity is given, never yours to change: propose "
    "any policy type but identity."
)
ProposedPolicy = Annotated[
    GovernancePolicy | AdaptationPolicy | ResourceAllocationPolicy | ThrottlePolicy,
    Field(discriminator="policy_type"),
]
"""What the model may propose: every policy type but identity, which people decide."""


class PolicyProposal(BaseModel):
    """The tool's input: one policy document and the reason for it."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(min_length=1, max_length=2048)
    policy: ProposedPolicy


TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Propose one policy (any policy type but identity) answering the anomaly.",
    "input_schema": PolicyProposal.model_json_schema(),
}


class LlmFailed(Exception):
    """The LLM gave no usable answer; `outcome` is `error` or `invalid_output`."""

    def __init__(self, outcome: str, detail: str, reasons: list[str] | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.reasons = reasons or []


def backoff(attempt: int) -> float:
    """Full jitter: anywhere up to the exponential bound, so many callers' retries spread."""
    return random.uniform(0.1, 1.0) * min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2.0**attempt)  # noqa: S311


def retry_after(error: anthropic.APIStatusError) -> float | None:
    """The server's own wait hint, in seconds (`retry-after-ms` first, as the SDK does)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(error.response.headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None


def explain(error: anthropic.APIStatusError) -> tuple[str, bool]:
    """What went wrong, in words an operator can act on, and whether a retry may help."""
    body: dict[str, Any] = error.body if isinstance(error.body, dict) else {}
    error_field = body.get("error")
    inner: dict[str, Any] = error_field if isinstance(error_field, dict) else {}
    message = str(inner.get("message") or error.message)
    details = inner.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    status = error.status_code
    if status in (401, 403):
        return f"the Anthropic API refused the key ({status}): {message}; check the key", False
    spent = code in SPEND_LIMIT_CODES or any(w in message.lower() for w in SPEND_LIMIT_WORDS)
    if status in (400, 429) and spent:
        return f"the Anthropic API spend limit is reached ({status}): {message}", False
    return f"LLM API error {status}: {message}", status in RETRY_STATUSES


@dataclass
class LlmProposer:
    llm: MeteredLlm
    model: str
    max_retries: int = 2
    deadline_s: float = 30.0

    @property
    def source(self) -> str:
        return f"llm:{self.model}"

    async def propose(
        self,
        anomaly: Anomaly,
        current: list[PolicyRecord],
        identity: dict[str, Any] | None,
        vsm_id: str,
    ) -> dict[str, Any]:
        """The raw tool input (`{"rationale", "policy"}`), not yet validated; or `LlmFailed`.
        The call is charged to the viable system `vsm_id`."""
        prompt = {
            "anomaly": {
                "anomaly_type": anomaly.anomaly_type,
                "severity": anomaly.severity,
                "context": anomaly.context,
            },
            "identity": identity,
            "current_policies": [r.policy.model_dump(mode="json") for r in current],
        }
        reply = await self._create(self.llm.for_system(vsm_id), json.dumps(prompt, default=str))
        for block in reply.content:
            if block.type == "tool_use" and block.name == TOOL_NAME:
                if not isinstance(block.input, dict):
                    raise LlmFailed("invalid_output", "the tool input is not an object")
                return block.input
        raise LlmFailed("invalid_output", f"the reply has no {TOOL_NAME} call")

    async def _create(self, llm: MeteredLlm, content: str) -> Any:
        """The reply, after bounded, jittered retries of what may pass; else `LlmFailed`."""
        import anthropic  # loaded with the client already

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await llm.create(
                    model=self.model,
                    max_tokens=MAX_TOKENS,
                    system=SYSTEM,
                    tools=[TOOL],
                    tool_choice={"type": "tool", "name": TOOL_NAME},
                    messages=[{"role": "user", "content": content}],
                )
            except anthropic.APIStatusError as error:
                detail, retryable = explain(error)
                wait = retry_after(error) or backoff(attempt - 1)
                failure: Exception = error
            except anthropic.APIError as error:  # no answer, or a 200 whose body broke off
                detail, retryable = f"LLM unreachable: {error.message}", True
                wait, failure = backoff(attempt - 1), error
            out_of_time = time.monotonic() - started + wait > self.deadline_s
            if not retryable or attempt > self.max_retries or out_of_time:
                tries = f" (after {attempt} attempts)" if retryable else ""
                raise LlmFailed("error", detail + tries) from failure
            await asyncio.sleep(wait)


def create_proposer(
    api_key: str | None,
    base_url: str | None,
    model: str,
    timeout_s: float,
    max_retries: int,
    *,
    meter: LlmMeter,
    caller: Caller,
) -> LlmProposer | None:
    """Built at start-up, and only when a key is configured (otherwise rules only)."""
    if not api_key:
        return None
    import anthropic  # the SDK only with an LLM configured

    client = anthropic.AsyncAnthropic(
        api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
    )
    llm = MeteredLlm(client, meter, caller)
    return LlmProposer(llm=llm, model=model, max_retries=max_retries, deadline_s=timeout_s)
