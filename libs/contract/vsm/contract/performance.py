"""S1 performance as Beer measured it, reported upward by every agent on `vsm.control`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from vsm.contract.message import Message

__all__ = ["UnitPerformance", "performance_key"]


def performance_key(agent_id: str) -> str:
    """Routing key on `vsm.control` for an agent's performance report."""
    return f"s1.performance.{agent_id}"


MAX_WORK_KINDS = 32


class UnitPerformance(Message):
    """Beer's three achievements and the indices over them, for one S1 unit over a window.

    actuality: what the unit achieves now (e.g. successful commands per second);
    capability: what it could achieve with its current resources (its allocation);
    potentiality: what it could achieve with full resources.
    productivity = actuality/capability, latency = capability/potentiality,
    performance = actuality/potentiality (each None when its denominator is 0).
    """

    TYPE: ClassVar[str] = "vsm.s1.performance.v1"

    agent_id: str = Field(min_length=1, max_length=128)
    agent_type: str = Field(min_length=1, max_length=32)
    window_s: float = Field(gt=0)
    actuality: float = Field(ge=0)
    capability: float = Field(ge=0)
    potentiality: float = Field(ge=0)
    productivity: float | None = Field(default=None, ge=0)
    latency: float | None = Field(default=None, ge=0)
    performance: float | None = Field(default=None, ge=0)
    succeeded: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    work: dict[str, int] = Field(
        default_factory=dict,
        description="The mix of work done in the window: `<command>.<ok|error>` -> how many "
        "(the 32 most frequent; empty from earlier releases). S4 measures its variety.",
    )
    llm_spent_today_usd: float | None = Field(
        default=None,
        ge=0,
        description="What the unit spent on LLM calls this UTC day (None: it made none), so "
        "S3 learns the day's spend again after a restart.",
    )

    @field_validator("work")
    @classmethod
    def _work_bounded(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) > MAX_WORK_KINDS:
            raise ValueError(f"should have at most {MAX_WORK_KINDS} entries, not {len(value)}")
        if any(len(k) > 80 or not 0 <= n <= 10_000_000 for k, n in value.items()):
            raise ValueError(
                "every entry names a kind of work (80 characters at most) and a "
                "count within 0..10000000"
            )
        return value
