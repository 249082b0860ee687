"""How the contract says no: exceptions for handlers, a reply body for requesters.

`Unprocessable` is a message that can never be processed (it goes to a dead-letter queue);
`Refused` is a request understood and declined (its requester gets an `ErrorReply`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from vsm.contract.message import Message

__all__ = ["MESSAGE_LIMIT", "ErrorReply", "Refused", "Unprocessable"]

MESSAGE_LIMIT = 4096
"""The longest `ErrorReply.message`; a longer refusal message is cut to it."""


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
    message: str = Field(max_length=MESSAGE_LIMIT)
    details: dict[str, Any] = Field(default_factory=dict)


class Refused(Exception):
    """A request declined with a stable `code`, a `message` for people and `details`.

    Raise it anywhere below a request handler: the kit answers the requester with the
    `ErrorReply` it stands for, and a requester gets it back as a `Refused` of its own
    (`vsm.kit.bus.RequestFailed`), which the REST gateway answers as its `ErrorBody`.
    Nothing else changes: a refused request leaves the system as it was.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def reply(self) -> ErrorReply:
        """The `ErrorReply` this refusal answers (its message cut to `MESSAGE_LIMIT`)."""
        return ErrorReply(
            code=self.code, message=self.message[:MESSAGE_LIMIT], details=self.details
        )
