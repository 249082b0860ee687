"""The LLM policy proposer: Claude answers through a tool whose input schema is the policy
schema. Its output is only a proposal: S5 validates it like any other policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anthropic
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.policy import Policy, PolicyRecord
from vsm.queen.rules import Anomaly

TOOL_NAME = "propose_policy"
MAX_TOKENS = 2048
SYSTEM = (
    "You are System 5 (policy and identity) of a Viable System Model runtime. Given an "
    "anomaly, the current policies and the identity, propose exactly one policy by calling "
    f"the {TOOL_NAME} tool. Respect every identity constraint; prefer the least drastic "
    "policy that restores viability."
)


class PolicyProposal(BaseModel):
    """The tool's input: one policy document and the reason for it."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(min_length=1, max_length=2048)
    policy: Policy


TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Propose one policy (any policy type) answering the anomaly.",
    "input_schema": PolicyProposal.model_json_schema(),
}


class LlmFailed(Exception):
    """The LLM gave no usable answer; `outcome` is `error` or `invalid_output`."""

    def __init__(self, outcome: str, detail: str, reasons: list[str] | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.reasons = reasons or []


@dataclass
class LlmProposer:
    client: anthropic.AsyncAnthropic
    model: str

    @property
    def source(self) -> str:
        return f"llm:{self.model}"

    async def propose(
        self, anomaly: Anomaly, current: list[PolicyRecord], identity: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The raw tool input (`{"rationale", "policy"}`), not yet validated; or `LlmFailed`."""
        prompt = {
            "anomaly": {
                "anomaly_type": anomaly.anomaly_type,
                "severity": anomaly.severity,
                "context": anomaly.context,
            },
            "identity": identity,
            "current_policies": [r.policy.model_dump(mode="json") for r in current],
        }
        try:
            reply = await self.client.messages.create(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=SYSTEM,
                tools=[TOOL],  # type: ignore[list-item]
                tool_choice={"type": "tool", "name": TOOL_NAME},
                messages=[{"role": "user", "content": json.dumps(prompt, default=str)}],
            )
        except anthropic.APIStatusError as error:
            raise LlmFailed(
                "error", f"LLM API error {error.status_code}: {error.message}"
            ) from error
        except anthropic.APIError as error:
            raise LlmFailed("error", f"LLM unreachable: {error.message}") from error
        for block in reply.content:
            if block.type == "tool_use" and block.name == TOOL_NAME:
                if not isinstance(block.input, dict):
                    raise LlmFailed("invalid_output", "the tool input is not an object")
                return block.input
        raise LlmFailed("invalid_output", f"the reply has no {TOOL_NAME} call")


def create_proposer(
    api_key: str | None, base_url: str | None, model: str, timeout_s: float, max_retries: int
) -> LlmProposer | None:
    """Built at start-up, and only when a key is configured (otherwise rules only)."""
    if not api_key:
        return None
    client = anthropic.AsyncAnthropic(
        api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
    )
    return LlmProposer(client=client, model=model)
