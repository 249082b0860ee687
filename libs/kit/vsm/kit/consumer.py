"""Queues consumed with bare aio-pika: for queues that come and go at run time and carry a
service's hottest traffic (an S1 agent's own queue).

A FastStream subscriber costs about a third of a small message's CPU in its per-message
pipeline (middlewares, dependency injection, context scopes) and builds pydantic models when
it is created, which a service spawning agents pays once per agent. A direct consumer keeps
the kit's contract for what it consumes and drops the rest:

- ack once the handler returns; bad input (malformed JSON, wrong schema, an `Unprocessable`
  from the handler) is dead-lettered with its reason, then acked; an unexpected error is
  logged, counted and nacked for redelivery after a growing pause
  (`pause_before_redelivery`), up to the queue's delivery limit; `LeaveQueued` neither acks
  nor nacks (the broker keeps it);
- with signing keys, the signature, freshness and id are checked before anything is read
  (`admit`, which the queues a service consumes with a loop of its own go through too);
- FastStream's own metrics (`vsm_amqp_received_*`, labelled as its subscribers label them),
  so dashboards see no difference, and with tracing on a consumer span in the sender's trace.

All queues share one robust channel; after a reconnection every queue is consumed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from faststream.prometheus.manager import MetricsManager
from faststream.prometheus.types import ProcessingStatus
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.deadletter import MessageGuard, Refused, pause_before_redelivery, verdict
from vsm.kit.replay import Stamp

__all__ = ["UNCHECKED", "Admission", "DirectConsumers", "Handler", "LeaveQueued", "admit"]

log = structlog.get_logger("vsm.consumer")

Handler = Callable[[Envelope[Message], AbstractIncomingMessage], Awaitable[None]]


@dataclass(frozen=True)
class Admission:
    """A consumed message the guard let through (or that no guard checked): `settle` it once,
    when it is acked (`handled`: its id is then recorded against replays) or given back."""

    guard: MessageGuard | None = None
    stamp: Stamp | None = None

    def settle(self, *, handled: bool) -> None:
        if self.guard is not None and self.stamp is not None:
            self.guard.replay.settle(self.stamp, handled=handled)


UNCHECKED = Admission()


async def admit(
    bus: Bus, message: AbstractIncomingMessage, queue: str, dead_letter_key: str | None = None
) -> Admission | ProcessingStatus:
    """The kit's message guard for a queue consumed outside its subscribers, before anything
    reads the message: its admission, or, refused (bad signature, stale, replayed), the
    status it was settled with: parked with its reason (on the dead letters of `queue`, or
    routed by `dead_letter_key`), logged as a security event, and acked; nacked when it
    could not be parked (it comes back and is refused again)."""
    guard = bus.guard
    if guard is None:
        return UNCHECKED
    admitted = guard.admit(message, queue)
    if not isinstance(admitted, Refused):
        return Admission(guard, admitted)
    try:
        await guard.refuse(
            message,
            queue,
            admitted,
            lambda bad: bus.dead_letter(message, queue, bad, dead_letter_key),
        )
    except Exception:
        await message.nack(requeue=True)
        return ProcessingStatus.nacked
    await message.ack()
    return ProcessingStatus.acked


class LeaveQueued(Exception):
    """Raised by a handler: neither ack nor nack; the broker redelivers the message when this
    consumer's channel closes (e.g. work that had not started when the service stopped)."""


@dataclass
class _Consumer:
    queue: str
    """The queue's name on the broker (namespaced)."""
    dead_letter_key: str
    """The routing key of its dead letters (namespaced)."""
    handler: Handler
    tag: str | None = None
    source: AbstractQueue | None = None


class DirectConsumers:
    def __init__(
        self,
        bus: Bus,
        *,
        prefetch_count: int,
        grace_s: float,
        metrics: MetricsManager | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.bus = bus
        self.prefetch_count = prefetch_count
        self.grace_s = grace_s
        self.metrics = metrics
        self.tracer = tracer
        self._consumers: dict[str, _Consumer] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self._channel: AbstractRobustChannel | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> AbstractRobustChannel:
        async with self._opening:
            if self._channel is None:
                connection: AbstractRobustConnection = await self.bus.broker.connect()
                channel: Any = await connection.channel(publisher_confirms=False)
                await channel.set_qos(prefetch_count=self.prefetch_count)
                channel.reopen_callbacks.add(self._resume)
                self._channel = channel
            return self._channel

    async def consume(self, queue: topology.Queue, handler: Handler) -> None:
        """Consume `queue` (declared beforehand) with `handler(envelope, message)`."""
        ns = self.bus.namespace.name
        consumer = _Consumer(ns(queue.name), ns(queue.dead_letter_key), handler)
        self._consumers[consumer.queue] = consumer
        await self._start(await self._open(), consumer)

    async def _start(self, channel: AbstractRobustChannel, consumer: _Consumer) -> None:
        # Not registered with the channel for restoring (`ensure=False` declares nothing): a
        # queue deleted while the connection was away would fail the whole channel's recovery;
        # `_resume` consumes again only the queues still wanted.
        source = await channel.get_queue(consumer.queue, ensure=False)
        consumer.source = source

        async def on_delivery(message: AbstractIncomingMessage) -> None:
            await self._deliver(consumer, message)

        consumer.tag = await source.consume(on_delivery)

    async def _resume(self, channel: Any) -> None:
        for consumer in list(self._consumers.values()):
            try:
                await self._start(channel, consumer)
            except Exception as error:
                log.error("consumer_not_resumed", queue=consumer.queue, error=repr(error))

    async def cancel(self, queue: topology.Queue) -> None:
        """Stop consuming `queue`; the messages it is handling still finish and settle."""
        await self._cancel(self.bus.namespace.name(queue.name))

    async def _cancel(self, name: str) -> None:
        consumer = self._consumers.pop(name, None)
        if consumer is not None and consumer.source is not None and consumer.tag is not None:
            with contextlib.suppress(Exception):
                await consumer.source.cancel(consumer.tag)

    async def stop(self) -> None:
        """Stop every consumer, let the messages under way finish (for up to `grace_s`),
        close the channel: what is still unacked goes back to the broker."""
        for name in list(self._consumers):
            await self._cancel(name)
        if self._running:
            await asyncio.wait(list(self._running), timeout=self.grace_s)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    # One delivery ---------------------------------------------------------------------
    async def _deliver(self, consumer: _Consumer, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        handler = self.bus.telemetry.routes(message.exchange or "", message.routing_key or "")
        metrics = self.metrics
        if metrics is not None:
            metrics.add_received_message(broker="rabbitmq", handler=handler)
            metrics.observe_received_messages_size(
                broker="rabbitmq", handler=handler, size=len(message.body)
            )
            metrics.add_received_message_in_process(broker="rabbitmq", handler=handler)
        started = time.perf_counter()
        status = ProcessingStatus.error
        traced = self._enter_span(consumer.queue, message)
        try:
            status = await self._settle(consumer, message)
        finally:
            if traced is not None:
                span, token = traced
                context.detach(token)
                span.end()
            if metrics is not None:
                metrics.observe_received_processed_message_duration(
                    duration=time.perf_counter() - started, broker="rabbitmq", handler=handler
                )
                metrics.remove_received_message_in_process(broker="rabbitmq", handler=handler)
                metrics.add_received_processed_message(
                    broker="rabbitmq", handler=handler, status=status
                )
            if task is not None:
                self._running.discard(task)

    def _enter_span(
        self, queue: str, message: AbstractIncomingMessage
    ) -> tuple[trace.Span, Token[Context]] | None:
        """A consumer span in the sender's trace, current while the handler runs (so what it
        publishes carries it on); None without tracing."""
        if self.tracer is None:
            return None
        parent = propagate.extract(dict(message.headers or {}))
        span = self.tracer.start_span(
            f"process {queue}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": message.exchange or "amq.default",
                "messaging.destination.subscription.name": queue,
                "messaging.rabbitmq.destination.routing_key": message.routing_key or "",
                "messaging.message.id": message.message_id or "",
                "messaging.message.conversation_id": message.correlation_id or "",
                "messaging.message.body.size": len(message.body),
            },
        )
        return span, context.attach(trace.set_span_in_context(span, parent))

    async def _settle(
        self, consumer: _Consumer, message: AbstractIncomingMessage
    ) -> ProcessingStatus:
        """Check, decode, handle, then ack, dead-letter or nack: the outcome's status."""
        admission = (
            UNCHECKED
            if self.bus.guard is None
            else await admit(self.bus, message, consumer.queue, consumer.dead_letter_key)
        )
        if not isinstance(admission, Admission):
            return admission
        handled = False
        try:
            envelope = AnyEnvelope.validate_json(message.body)
            await consumer.handler(envelope, message)
            handled = True
        except LeaveQueued:
            return ProcessingStatus.skipped
        except Exception as error:
            return await self._failed(consumer, message, error)
        finally:
            admission.settle(handled=handled)  # its id is recorded only when acked
        await message.ack()
        return ProcessingStatus.acked

    async def _failed(
        self, consumer: _Consumer, message: AbstractIncomingMessage, error: Exception
    ) -> ProcessingStatus:
        queue, bad = consumer.queue, verdict(error, message.body)
        if bad is not None:
            try:
                await self.bus.dead_letter(message, queue, bad, consumer.dead_letter_key)
            except Exception:
                log.exception("dead_letter_failed", queue=queue, reason=bad.reason)
            else:
                await message.ack()
                return ProcessingStatus.acked
        else:
            self.bus.handler_failed(message, queue, error)
        await pause_before_redelivery(message.headers)
        await message.nack(requeue=True)
        return ProcessingStatus.nacked
