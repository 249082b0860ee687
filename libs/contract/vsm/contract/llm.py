"""What an LLM call cost: one record per call to the Messages API, for S3's budgets.

Published by whoever made the call (operations for its llm_workers, queen for synthesis,
intelligence for its amplifier) on `vsm.control` with key `llm.usage.<agent_type>`, without
the mandatory flag (a call is not failed for a record S3 missed). S3 keeps each viable
system's and each agent's spend of the UTC day from them. The envelope's `vsm_id` is the
viable system charged.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from vsm.contract.message import Message

__all__ = ["LlmUsage", "llm_usage_key"]


def llm_usage_key(agent_type: str) -> str:
    """Routing key on `vsm.control` for the usage of one call by an agent of `agent_type`."""
    return f"llm.usage.{agent_type}"


class LlmUsage(Message):
    """Tokens of one Messages API call, as the API's `usage` counted them, and their price.

    `agent_id` is the agent that called, or the service's instance for a service's own calls
    (then `agent_type` is the service's name). `model` is the price table's entry that priced
    the call (`other` for a model the table does not know, priced at its `other` entry).
    """

    TYPE: ClassVar[str] = "vsm.llm.usage.v1"

    agent_id: str = Field(min_length=1, max_length=128)
    agent_type: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=128)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(ge=0)
    duration_s: float = Field(ge=0)
    refused: bool = Field(
        default=False,
        description="The caller's allowance refused the call (`llm_budget_exhausted`): it was "
        "not sent, nothing was spent.",
    )
