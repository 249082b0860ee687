"""The kit's publishing channel: bare aio-pika with publisher confirms and returns raised.

Publishing is the hottest path of every service, so the kit publishes on aio-pika's channels,
straight through their aiormq channels with the protocol's properties (`confirms.publish`),
rather than through FastStream's per-message publish pipeline (publish command, middlewares,
encoding; `make bench`, `kit.publish`), and does what that pipeline would do:

- with signing keys, the signature headers of every body, for the exchange and routing key
  it is published to (not of a dead letter, which keeps the headers it arrived with);
- FastStream's own published-message metrics (`vsm_amqp_published_messages_*`, labelled
  `<exchange>.<routing key>` as FastStream labels them), so dashboards see no difference;
- the broker's `app_id` (`vsm/<service>`) and a timestamp on every message;
- with tracing on, a producer span per publish (OpenTelemetry's messaging conventions),
  whose context the message carries on.

The channel is robust: it comes back with the connection; a publish while the broker is
away raises, it is never queued in the process. A publish the broker nacks is published
again on a new channel (`vsm.kit.confirms`).

Replies to a requester (`confirmed=False`) go on a second channel, without confirms: a
reply is neither mandatory nor persistent and goes to a requester's direct reply-to, which
takes it or drops it, so the broker's confirm would say nothing, yet waiting for it costs
the replying handler a round trip and a frame to read per request. What must not be lost
(a command's result, before its delivery is acked) stays confirmed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq import spec
from faststream.prometheus.manager import MetricsManager
from faststream.prometheus.types import PublishingStatus
from opentelemetry import propagate, trace

from vsm.kit.confirms import ConfirmingChannel, publish
from vsm.kit.deadletter import REASON_HEADER, MessageGuard
from vsm.kit.labels import RouteLabels

__all__ = ["Producer"]

PERSISTENT, NOT_PERSISTENT = 2, 1
"""AMQP's `delivery_mode`s."""


class Producer:
    def __init__(
        self,
        app_id: str,
        guard: MessageGuard | None,
        metrics: MetricsManager | None = None,
        tracer: trace.Tracer | None = None,
        routes: RouteLabels | None = None,
    ) -> None:
        self.app_id = app_id
        self.routes = routes or RouteLabels()
        self.guard = guard
        self.metrics = metrics
        self.tracer = tracer
        self.confirming = ConfirmingChannel()
        self._replies: AbstractChannel | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        await self.confirming.open(connection)
        self._replies = await connection.channel(publisher_confirms=False)

    async def stop(self) -> None:
        replies, self._replies = self._replies, None
        if replies is not None and not replies.is_closed:
            await replies.close()
        await self.confirming.close()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        mandatory: bool,
        persist: bool = True,
        confirmed: bool = True,
        headers: dict[str, Any] | None = None,
        **properties: Any,
    ) -> None:
        """Publish and wait for the broker's confirm; raises when it cannot route or store
        it (`mandatory`), or when the broker is away. Not `confirmed` (a reply, never
        mandatory): written to the broker, no confirm awaited."""
        if mandatory and not confirmed:
            raise ValueError("a mandatory publish is confirmed")
        headers = dict(headers or {})
        if self.guard is not None and REASON_HEADER not in headers:
            headers |= self.guard.signature_headers(body, exchange, routing_key)
        if self.tracer is None:
            amqp = self._properties(headers, persist, properties)
            await self._send(exchange, routing_key, body, amqp, mandatory, confirmed=confirmed)
            return
        with self.tracer.start_as_current_span(
            f"publish {exchange or 'amq.default'}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.operation.name": "publish",
                "messaging.destination.name": exchange or "amq.default",
                "messaging.rabbitmq.destination.routing_key": routing_key,
                "messaging.message.id": str(properties.get("message_id") or ""),
                "messaging.message.conversation_id": str(properties.get("correlation_id") or ""),
                "messaging.message.body.size": len(body),
            },
        ):
            propagate.inject(headers)  # the consumer's span follows this one
            amqp = self._properties(headers, persist, properties)
            await self._send(exchange, routing_key, body, amqp, mandatory, confirmed=confirmed)

    def _properties(
        self, headers: dict[str, Any], persist: bool, properties: dict[str, Any]
    ) -> spec.Basic.Properties:
        """The AMQP properties (named as aio-pika's `Message` names them: `type`,
        `expiration` in seconds) with the kit's `app_id` and a timestamp."""
        expiration = properties.pop("expiration", None)
        kind = properties.pop("type", None)
        return spec.Basic.Properties(
            headers=headers,
            delivery_mode=PERSISTENT if persist else NOT_PERSISTENT,
            app_id=self.app_id,
            timestamp=datetime.now(UTC),
            message_type=kind,
            expiration=None if expiration is None else str(int(expiration * 1000)),
            **properties,
        )

    async def _send(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        amqp: spec.Basic.Properties,
        mandatory: bool,
        *,
        confirmed: bool,
    ) -> None:
        destination = self.routes(exchange, routing_key)
        started = time.perf_counter()
        status = PublishingStatus.error
        try:
            if confirmed:
                await self.confirming.publish(
                    exchange, routing_key, body, amqp, mandatory=mandatory
                )
            else:
                await self._unconfirmed(exchange, routing_key, body, amqp)
            status = PublishingStatus.success
        except Exception as error:
            if self.metrics is not None:
                self.metrics.add_published_message_exception(
                    broker="rabbitmq", destination=destination, exception_type=type(error).__name__
                )
            raise
        finally:
            if self.metrics is not None:
                self.metrics.observe_published_message_duration(
                    duration=time.perf_counter() - started,
                    broker="rabbitmq",
                    destination=destination,
                )
                self.metrics.add_published_message(
                    broker="rabbitmq", destination=destination, status=status
                )

    async def _unconfirmed(
        self, exchange: str, routing_key: str, body: bytes, amqp: spec.Basic.Properties
    ) -> None:
        """A reply: through the default exchange to the requester's reply-to."""
        if exchange:
            raise ValueError("an unconfirmed publish is a reply, through the default exchange")
        if self._replies is None:
            raise RuntimeError("the channel is not open")
        await publish(self._replies, "", routing_key, body, amqp, mandatory=False)
