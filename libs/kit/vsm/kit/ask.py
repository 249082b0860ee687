"""Request/reply through any exchange, or straight to a queue, with the bus's requester.

`Bus.request` asks a service on `vsm.requests`; S1 agents are asked on `vsm.s1.commands` or
directly on their queue (S3* audits bypass S2), with the same direct reply-to machinery.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.exceptions import DeliveryError

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.message import Message
from vsm.kit.bus import AnyEnvelope, Bus, RequestFailed


class NotRoutable(Exception):
    """The broker had no queue for the request (e.g. the addressed agent does not exist)."""


async def ask(
    bus: Bus,
    body: Message,
    *,
    exchange: topology.Exchange | None = None,
    routing_key: str = "",
    queue: str | None = None,
    timeout: float | None = None,
    cause: Envelope[Any] | None = None,
) -> Envelope[Message]:
    """Publish `body` on `exchange` with `routing_key`, or to `queue` (canonical name) through
    the default exchange; the reply envelope, `RequestFailed`, `NotRoutable` or `RequestTimeout`.
    """
    envelope = bus.envelope(body, cause=cause)
    deadline = timeout or bus.request_timeout_s
    headers: dict[str, Any] = {"ce_type": envelope.type, "vsm_id": envelope.vsm_id}
    if envelope.traceparent:
        headers["traceparent"] = envelope.traceparent
    message = aio_pika.Message(
        envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=envelope.id,
        correlation_id=envelope.id,
        type=envelope.type,
        priority=envelope.priority,
        headers=headers,
        expiration=deadline,  # nobody waits for the answer after the deadline
    )
    if queue is not None:
        target, key = "", bus.namespace.name(queue)
    elif exchange is not None:
        target, key = bus.namespace.name(exchange.name), routing_key
    else:
        raise ValueError("ask needs an exchange or a queue")
    try:
        raw = await bus.requester.request(target, key, message, deadline)
    except DeliveryError as error:
        raise NotRoutable(f"no queue takes {key!r}") from error
    reply = AnyEnvelope.validate_json(raw.body)
    if isinstance(reply.data, ErrorReply):
        raise RequestFailed(reply.data)
    return reply
