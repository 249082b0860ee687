"""Dead-lettering with a reason: a message that can never be processed is parked, not lost.

The broker's own dead-lettering (delivery limit on quorum queues) catches handlers that keep
failing; this module catches input that is wrong, says why, and acks only once the dead
letter is confirmed by the broker.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import structlog
from aio_pika import IncomingMessage
from faststream import BaseMiddleware
from faststream.exceptions import HandlerException, SubscriberNotFound
from faststream.message import StreamMessage
from pydantic import ValidationError

from vsm.contract.errors import Unprocessable
from vsm.contract.message import model_for

REASON_HEADER = "x-vsm-dead-letter-reason"
DETAIL_HEADER = "x-vsm-dead-letter-detail"

log = structlog.get_logger("vsm.deadletter")

DeadLetterSink = Callable[[IncomingMessage, str, Unprocessable], Awaitable[None]]
FailureSink = Callable[[IncomingMessage, str, BaseException], None]


async def decode_json(msg: StreamMessage[Any]) -> Any:
    """Strict JSON decoding: anything else is `malformed_json`, whatever its content type."""
    try:
        return json.loads(msg.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Unprocessable("malformed_json", str(error)) from error


def of_type(message_type: str) -> Callable[[StreamMessage[Any]], Awaitable[bool]]:
    """A FastStream filter: the handler for envelopes whose CloudEvents `type` is this one."""

    async def matches(msg: StreamMessage[Any]) -> bool:
        body = await msg.decode()
        return isinstance(body, dict) and body.get("type") == message_type

    matches.__name__ = f"type={message_type}"
    return matches


def _no_handler(body: bytes) -> Unprocessable:
    try:
        message_type = json.loads(body).get("type")
    except (ValueError, AttributeError):
        message_type = None
    if not isinstance(message_type, str):
        return Unprocessable("invalid_schema", "type: the envelope has no message type")
    if model_for(message_type) is None:
        return Unprocessable("unknown_type", f"unknown message type {message_type!r}")
    return Unprocessable("unexpected_type", f"no handler here for {message_type!r}")


def verdict(error: BaseException, body: bytes = b"") -> Unprocessable | None:
    """Whether `error` says the message itself is bad (and why), or something else failed."""
    if isinstance(error, Unprocessable):
        return error
    if isinstance(error, SubscriberNotFound):
        return _no_handler(body)
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False)
        if any(problem["type"] == "unknown_message_type" for problem in problems):
            return Unprocessable("unknown_type", problems[0]["msg"])
        detail = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in problems[:10]
        )
        return Unprocessable("invalid_schema", detail)
    return None


def dead_letter_middleware(
    dead_letter: DeadLetterSink, failed: FailureSink
) -> type[BaseMiddleware[Any, Any]]:
    """A FastStream middleware class bound to the bus's dead-letter and failure sinks."""

    class DeadLetterMiddleware(BaseMiddleware[Any, Any]):
        async def after_processed(
            self,
            exc_type: type[BaseException] | None = None,
            exc_val: BaseException | None = None,
            exc_tb: TracebackType | None = None,
        ) -> bool | None:
            if exc_val is None or isinstance(exc_val, HandlerException):
                return False
            queue = self.context.get_local("handler_").queue.name
            bad = verdict(exc_val, self.msg.body)
            if bad is None:
                failed(self.msg, queue, exc_val)
                return False
            try:
                await dead_letter(self.msg, queue, bad)
            except Exception:
                log.exception("dead_letter_failed", queue=queue, reason=bad.reason)
                return False
            return True

    return DeadLetterMiddleware
