"""Dead-lettering with a reason: a message that can never be processed is parked, not lost.

The broker's own dead-lettering (delivery limit on quorum queues) catches handlers that keep
failing; this module catches input that is wrong, says why, and acks only once the dead
letter is confirmed by the broker. With signing keys, the same middleware signs every
envelope the broker publishes (for the exchange and routing key it is published to) and,
before anything else reads a consumed message, checks its signature (for the exchange and
routing key it was delivered from) and then its freshness and id (`bad_signature`, `stale`,
`from_future`, `replayed`).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog
from aio_pika import IncomingMessage
from aio_pika.abc import AbstractIncomingMessage
from faststream import BaseMiddleware
from faststream.exceptions import AckMessage, HandlerException, SubscriberNotFound
from faststream.message import StreamMessage
from faststream.rabbit.response import RabbitPublishCommand
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from vsm.contract.errors import Unprocessable
from vsm.contract.message import model_for
from vsm.contract.topology import DELIVERY_LIMIT
from vsm.kit.eventlog import LogKeys
from vsm.kit.replay import ReplayGuard, Stamp, stamp_of
from vsm.kit.signing import KEY_ID_HEADER, BadSignature, Keyring

if TYPE_CHECKING:
    from vsm.kit.settings import ServiceSettings

__all__ = [
    "DETAIL_HEADER",
    "REASON_HEADER",
    "REDELIVERY_PAUSE_S",
    "DeadLetterSink",
    "FailureSink",
    "MessageGuard",
    "Refused",
    "dead_letter_middleware",
    "decode_json",
    "of_type",
    "pause_before_redelivery",
    "redelivery_pause",
    "settle",
    "verdict",
]

REASON_HEADER = "x-vsm-dead-letter-reason"
DETAIL_HEADER = "x-vsm-dead-letter-detail"

log = structlog.get_logger("vsm.deadletter")
security_log = structlog.get_logger("vsm.security")

REDELIVERY_PAUSE_S = (0.25, 2.0)
"""A failed message waits before its nack: 0.25 s doubling per delivery, at most 2 s."""

DeadLetterSink = Callable[[IncomingMessage, str, Unprocessable], Awaitable[None]]
FailureSink = Callable[[IncomingMessage, str, BaseException], None]


async def decode_json(msg: StreamMessage[Any]) -> Any:
    """Strict JSON decoding: anything else is `malformed_json`, whatever its content type."""
    try:
        return json.loads(msg.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Unprocessable("malformed_json", str(error)) from error
    except RecursionError as error:  # nested deeper than the parser goes: not a handler fault
        raise Unprocessable("malformed_json", "nested too deeply") from error


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


def redelivery_pause(delivery_count: int) -> float:
    """How long a message whose handler failed waits before its nack (with jitter)."""
    first, most = REDELIVERY_PAUSE_S
    pause: float = min(most, first * 2.0**delivery_count)
    return pause * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


async def pause_before_redelivery(headers: Mapping[str, Any] | None) -> None:
    """Hold a message whose handler failed unexpectedly before its nack (the last delivery's
    nack dead-letters it at once, so that one is not held)."""
    count = (headers or {}).get("x-delivery-count") or 0
    count = count if isinstance(count, int) else int(count)
    if count < DELIVERY_LIMIT:
        await asyncio.sleep(redelivery_pause(count))


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
        if problems and problems[0]["type"] == "json_invalid":  # parsed and validated at once
            return Unprocessable("malformed_json", problems[0]["msg"])
        detail = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in problems[:10]
        )
        return Unprocessable("invalid_schema", detail)
    return None


async def settle(
    message: AbstractIncomingMessage,
    queue: str,
    error: BaseException,
    park: Callable[[Unprocessable], Awaitable[None]],
    failed: Callable[[BaseException], None],
) -> bool:
    """The kit's one rule for a consumed message whose handling raised `error`, on every
    consuming path (FastStream's subscribers and the kit's own consumers): True when it is bad
    input (`verdict`), parked with its reason by `park` (ack it); False when it is anything
    else, counted and logged by `failed`, or could not be parked (give it back: it is
    redelivered up to the queue's delivery limit)."""
    bad = verdict(error, message.body)
    if bad is None:
        failed(error)
        return False
    try:
        await park(bad)
    except Exception:
        log.exception("dead_letter_failed", queue=queue, reason=bad.reason)
        return False
    return True


@dataclass(frozen=True)
class Refused:
    bad: Unprocessable
    stamp: Stamp | None = None


class MessageGuard:
    """Message security at the kit's edge: signs what goes out, checks what comes in."""

    def __init__(
        self,
        service: str,
        keyring: Keyring,
        replay: ReplayGuard,
        registry: CollectorRegistry,
        logs: LogKeys | None = None,
    ) -> None:
        self.service = service
        self.keyring = keyring
        self.replay = replay
        self.logs = logs or LogKeys(keyring)
        """How the event logs are read back: the signing keys and those kept for the logs."""
        self.refusals = Counter(
            "vsm_security_refusals",
            "Consumed messages (and replies) refused by the signature or replay checks.",
            ["service", "queue", "reason"],
            registry=registry,
        )

    @classmethod
    def from_settings(
        cls, service: str, settings: ServiceSettings, registry: CollectorRegistry
    ) -> MessageGuard | None:
        """None without keys: nothing is signed or checked (the local default)."""
        keyring, log_keys = settings.keyring(), settings.log_keyring()
        if keyring is None or log_keys is None:
            log.info("message_signing", enabled=False, log_keys_ignored=log_keys is not None)
            return None
        window, skew = settings.vsm_replay_window_s, settings.vsm_max_clock_skew_s
        logs = LogKeys(
            log_keys,
            unsigned_history=settings.vsm_log_unsigned_history == "accept",
            skip=settings.log_skip(),
        )
        log.info(
            "message_signing",
            enabled=True,
            signing_key_id=keyring.key_id,
            key_ids=[kid for kid, _ in keyring.keys],
            log_key_ids=[kid for kid, _ in log_keys.keys[len(keyring.keys) :]],
            log_unsigned_history=settings.vsm_log_unsigned_history,
            log_skip=sorted(logs.skip),
            replay_window_s=window,
            max_clock_skew_s=skew,
        )
        return cls(service, keyring, ReplayGuard(window, skew), registry, logs)

    def signature_headers(self, body: Any, exchange: str, routing_key: str) -> dict[str, str]:
        """The headers that sign `body` for its destination (the broker's names); none when it
        is not JSON (receivers refuse it)."""
        raw = body.encode() if isinstance(body, str) else body
        if not isinstance(raw, bytes):
            return {}
        try:
            return self.keyring.sign(raw, exchange, routing_key)
        except ValueError:
            log.warning("unsigned_publish", reason="the body is not a JSON document")
            return {}

    def _verified(self, message: AbstractIncomingMessage) -> Any:
        return self.keyring.verify(
            message.body, message.headers or {}, message.exchange or "", message.routing_key or ""
        )

    def verify(self, message: AbstractIncomingMessage, queue: str) -> Unprocessable | None:
        """The signature check alone (replies: a correlation id is never answered twice)."""
        try:
            self._verified(message)
        except BadSignature as error:
            bad = Unprocessable("bad_signature", str(error))
            self.security_event(message, queue, bad)
            return bad
        return None

    def admit(self, message: AbstractIncomingMessage, queue: str) -> Stamp | Refused | None:
        """Signature, then freshness and id: a stamp to settle, a refusal, or None (no
        readable id or time: the schema check that follows refuses it)."""
        try:
            value = self._verified(message)
        except BadSignature as error:
            return Refused(Unprocessable("bad_signature", str(error)))
        stamp = stamp_of(queue, value)
        if stamp is None:
            return None
        refusal = self.replay.admit(stamp, redelivered=bool(message.redelivered))
        if refusal is None:
            return stamp
        detail = f"envelope {stamp.message_id!r} of {stamp.sent_at.isoformat()}"
        return Refused(Unprocessable(refusal, detail), stamp)

    async def refuse(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        refused: Refused,
        park: Callable[[Unprocessable], Awaitable[None]],
    ) -> None:
        """Log a refused message as a security event and park it (`park`, a dead-lettering);
        if parking fails, a replay refusal is forgotten (the redelivery is refused again)
        and the error goes on, so that the message is nacked, not lost."""
        self.security_event(message, queue, refused.bad)
        try:
            await park(refused.bad)
        except Exception:
            log.exception("dead_letter_failed", queue=queue, reason=refused.bad.reason)
            if refused.bad.reason == "replayed" and refused.stamp is not None:
                self.replay.refusal_unsettled(refused.stamp)
            raise

    def security_event(
        self, message: AbstractIncomingMessage, queue: str, bad: Unprocessable
    ) -> None:
        """Log and count a refusal: who sent what, where, and why it was refused."""
        headers: Mapping[str, Any] = message.headers or {}
        key_id = headers.get(KEY_ID_HEADER)
        self.refusals.labels(self.service, queue, bad.reason).inc()
        security_log.warning(
            "security_event",
            reason=bad.reason,
            detail=bad.detail[:200],
            queue=queue,
            message_id=message.message_id,
            key_id=key_id if isinstance(key_id, str) else None,
            exchange=message.exchange,
            routing_key=message.routing_key,
            user_id=message.user_id,  # checked by the broker when set
            app_id=message.app_id,
            redelivered=message.redelivered,
        )


def dead_letter_middleware(
    queue: str,
    dead_letter: DeadLetterSink,
    failed: FailureSink,
    guard: MessageGuard | None = None,
) -> type[BaseMiddleware[Any, Any]]:
    """A FastStream middleware class for the subscriber of `queue` (its name on the broker),
    bound to the bus's dead-letter and failure sinks, and to the message guard when signing
    is on."""

    class DeadLetterMiddleware(BaseMiddleware[Any, Any]):
        stamp: Stamp | None = None

        async def on_receive(self) -> None:
            # Entered after the ack/log/metrics middlewares and before any decoding, filter
            # or handler: a refused message is parked and acked without being read further.
            if guard is None:
                return
            admitted = guard.admit(self.msg, queue)
            if not isinstance(admitted, Refused):
                self.stamp = admitted
                return
            # A failed dead-lettering raises: nacked, it comes back and is refused again.
            await guard.refuse(
                self.msg, queue, admitted, lambda bad: dead_letter(self.msg, queue, bad)
            )
            raise AckMessage

        async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
            # Dead letters keep the headers (and signature) they arrived with.
            if guard is not None and REASON_HEADER not in cmd.headers:
                exchange = cmd.exchange.name if isinstance(cmd, RabbitPublishCommand) else ""
                signature = guard.signature_headers(cmd.body, exchange, cmd.destination)
                cmd.headers = {**cmd.headers, **signature}
            return await call_next(cmd)

        async def after_processed(
            self,
            exc_type: type[BaseException] | None = None,
            exc_val: BaseException | None = None,
            exc_tb: TracebackType | None = None,
        ) -> bool | None:
            if guard is not None and self.stamp is not None:  # recorded only when acked
                handled = exc_val is None or isinstance(exc_val, AckMessage)
                guard.replay.settle(self.stamp, handled=handled)
            if exc_val is None or isinstance(exc_val, HandlerException):
                return False
            msg = self.msg
            return await settle(
                msg,
                queue,
                exc_val,
                lambda bad: dead_letter(msg, queue, bad),
                lambda error: failed(msg, queue, error),
            )

    return DeadLetterMiddleware
