"""How the contract says no: an exception for handlers, a reply body for requesters."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from vsm.contract.message import Message


class Unprocessable(Exception):
    """A message that can never be processed; the kit dead-letters it with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ErrorReply(Message):
    """The reply to a request that failed; `code` is stable, `message` is for people."""

    TYPE: ClassVar[str] = "vsm.error.v1"

    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4096)
    details: dict[str, Any] = Field(default_factory=dict)
