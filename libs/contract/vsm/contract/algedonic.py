"""Algedonic signals: pain and pleasure, sent by anyone straight to S5 (and S4)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vsm.contract.message import Message

__all__ = ["AlgedonicSignal"]


class AlgedonicSignal(Message):
    """One felt signal; `episode` lets a sender say "still the same trouble" (de-duplication)."""

    TYPE: ClassVar[str] = "vsm.algedonic.signal.v1"

    kind: Literal["pain", "pleasure"]
    intensity: float = Field(ge=0.0, le=1.0)
    origin: str = Field(
        min_length=1, max_length=256, description="Who felt it, e.g. `operations/<agent_id>`."
    )
    reason: str = Field(
        min_length=1, max_length=64, description="A stable code, e.g. `error_burst`."
    )
    episode: str | None = Field(default=None, max_length=128)
    context: dict[str, Any] = Field(default_factory=dict)
