"""Queues consumed by the kit itself rather than through FastStream subscribers: queues
that come and go at run time (an S1 agent's own queue, a child's inbox) or whose deliveries
are settled later than their handler returns (S2's held work).

One delivery path for every such queue (`DirectConsumers`):

- with signing keys, the signature, freshness and id are checked before anything is read
  (`admit`); a refused message is parked with its reason and acked;
- `consume`: the kit settles: ack once the handler returns; bad input (malformed JSON, wrong
  schema, an `Unprocessable` from the handler) is dead-lettered with its reason, then acked;
  an unexpected error is logged, counted and nacked for redelivery after a growing pause
  (`pause_before_redelivery`), up to the queue's delivery limit; `LeaveQueued` neither acks
  nor nacks (the broker keeps it). The same rule as the FastStream middleware's
  (`vsm.kit.deadletter.settle`);
- `consume_held`: the handler is given the `Delivery` and settles it when its work is done;
- FastStream's own metrics (`vsm_amqp_received_*`, labelled as its subscribers label them),
  so dashboards see no difference, and with tracing on a consumer span in the sender's trace
  (for the deliveries the kit settles).

A consumer's queues share one robust channel; after a reconnection every queue still
wanted is consumed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
)
from faststream.prometheus.manager import MetricsManager
from faststream.prometheus.types import ProcessingStatus
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.message import Message
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.deadletter import MessageGuard, Refused, pause_before_redelivery, settle
from vsm.kit.replay import Stamp
from vsm.kit.rpc import CONNECTION_LOST

__all__ = [
    "UNCHECKED",
    "Admission",
    "Delivery",
    "DirectConsumers",
    "Handler",
    "LeaveQueued",
    "admit",
]

log = structlog.get_logger("vsm.consumer")


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
    """The kit's message guard for a queue the kit consumes itself, before anything reads
    the message: its admission, or, refused (bad signature, stale, replayed), the status it
    was settled with: parked with its reason (on the dead letters of `queue`, or routed by
    `dead_letter_key`), logged as a security event, and acked; nacked when it could not be
    parked (it comes back and is refused again)."""
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


@dataclass(slots=True)
class Delivery:
    """One admitted message of a queue the kit consumes, settled once: acked, given back,
    dead-lettered with its reason, or failed (the kit's rule for an error, `settle`)."""

    bus: Bus
    message: AbstractIncomingMessage
    queue: str
    """The queue's name on the broker (namespaced)."""
    dead_letter_key: str
    admission: Admission = UNCHECKED
    settled: bool = field(default=False, init=False)

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def reply_to(self) -> str | None:
        return self.message.reply_to

    @property
    def correlation_id(self) -> str | None:
        return self.message.correlation_id

    def _settle(self, *, handled: bool) -> bool:
        """Record the outcome once; False when it was settled before."""
        if self.settled:
            return False
        self.settled = True
        self.admission.settle(handled=handled)
        return True

    async def ack(self) -> None:
        """Done with it (a delivery of a channel since lost needs no ack: it comes back)."""
        if self._settle(handled=True):
            with contextlib.suppress(*CONNECTION_LOST):
                await self.message.ack()

    async def requeue(self) -> None:
        """Give it back to the queue at once."""
        if self._settle(handled=False):
            with contextlib.suppress(Exception):
                await self.message.nack(requeue=True)

    def leave(self) -> None:
        """Neither ack nor nack: the broker keeps it until this consumer's channel closes."""
        self._settle(handled=False)

    def report(self, error: BaseException) -> None:
        """Count and log an unexpected error in its handling, with the message's trace."""
        self.bus.handler_failed(self.message, self.queue, error)

    async def reply(self, envelope: Envelope[Any]) -> None:
        """Send `envelope` to the requester that waits for it (if any)."""
        await self.bus.forward(self.reply_to, self.correlation_id, envelope)

    async def dead_letter(self, bad: Unprocessable) -> ProcessingStatus:
        """Park it with the reason (answering a waiting requester), then ack; nacked for
        redelivery when it could not be parked."""
        return await self.fail(bad, pause_s=0.0)

    async def fail(self, error: BaseException, *, pause_s: float | None = None) -> ProcessingStatus:
        """Its handling raised `error`: bad input is parked with its reason and acked,
        anything else counted, logged and nacked for redelivery after `pause_s` (by default
        a pause growing with each delivery)."""
        if not self._settle(handled=False):
            return ProcessingStatus.skipped
        message, queue = self.message, self.queue

        async def park(bad: Unprocessable) -> None:
            await self.bus.dead_letter(message, queue, bad, self.dead_letter_key)

        if await settle(message, queue, error, park, self.report):
            await message.ack()
            return ProcessingStatus.acked
        if pause_s is None:
            await pause_before_redelivery(message.headers)
        elif pause_s > 0:
            await asyncio.sleep(pause_s)
        with contextlib.suppress(*CONNECTION_LOST):
            await message.nack(requeue=True)
        return ProcessingStatus.nacked


Handler = Callable[[Envelope[Message], Delivery], Awaitable[None]]
"""A handler the kit settles for: it is given the decoded envelope and its delivery."""
Holder = Callable[[Delivery], Awaitable[None]]
"""A handler that settles the delivery itself, when its work is done."""


@dataclass
class _Consumer:
    queue: str
    """The queue's name on the broker (namespaced)."""
    dead_letter_key: str
    """The routing key of its dead letters (namespaced)."""
    handler: Handler | None
    holder: Holder | None = None
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

    def sibling(self) -> DirectConsumers:
        """Consumers like these on a channel of their own (e.g. one per partition, so that one
        can be given up without touching the others)."""
        return DirectConsumers(
            self.bus,
            prefetch_count=self.prefetch_count,
            grace_s=self.grace_s,
            metrics=self.metrics,
            tracer=self.tracer,
        )

    async def _open(self) -> AbstractRobustChannel:
        async with self._opening:
            if self._channel is None:
                connection = await self.bus.connection()
                channel: Any = await connection.channel(publisher_confirms=False)
                await channel.set_qos(prefetch_count=self.prefetch_count)
                channel.reopen_callbacks.add(self._resume)
                self._channel = channel
            return self._channel

    async def consume(self, queue: topology.Queue, handler: Handler) -> None:
        """Consume `queue` (declared beforehand) with `handler(envelope, delivery)`; the kit
        settles each delivery by the handler's outcome."""
        await self._add(queue, handler, None)

    async def consume_held(self, queue: topology.Queue, holder: Holder) -> None:
        """Consume `queue` (declared beforehand) with `holder(delivery)`, which settles each
        delivery itself (`Delivery.ack`, `requeue`, `dead_letter`, `fail`), however late."""
        await self._add(queue, None, holder)

    async def _add(
        self, queue: topology.Queue, handler: Handler | None, holder: Holder | None
    ) -> None:
        ns = self.bus.namespace.name
        consumer = _Consumer(ns(queue.name), ns(queue.dead_letter_key), handler, holder)
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

    async def abandon(self) -> None:
        """Close the channel at once, its consumers not cancelled first: the broker takes
        back every delivery not yet settled and, on a single-active-consumer queue, hands the
        queue to the next consumer with them still first in line. Handlers still waiting on
        a delivery settle nothing any more (it is back with the broker)."""
        self._consumers.clear()
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

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
        try:
            admission = (
                UNCHECKED
                if self.bus.guard is None
                else await admit(self.bus, message, consumer.queue, consumer.dead_letter_key)
            )
            if not isinstance(admission, Admission):  # refused and parked, before any reading
                return
            delivery = Delivery(
                self.bus, message, consumer.queue, consumer.dead_letter_key, admission
            )
            if consumer.holder is not None:
                try:
                    await consumer.holder(delivery)
                except Exception as error:
                    await delivery.fail(error)
            elif consumer.handler is not None:
                await self._measured(consumer.handler, delivery)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _measured(self, handle: Handler, delivery: Delivery) -> None:
        message = delivery.message
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
        traced = self._enter_span(delivery.queue, message)
        try:
            status = await self._handle(handle, delivery)
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

    @staticmethod
    async def _handle(handle: Handler, delivery: Delivery) -> ProcessingStatus:
        """Decode, handle, then ack, dead-letter or nack: the outcome's status."""
        try:
            envelope = AnyEnvelope.validate_json(delivery.body)
            await handle(envelope, delivery)
        except LeaveQueued:
            delivery.leave()
            return ProcessingStatus.skipped
        except Exception as error:
            return await delivery.fail(error)
        await delivery.ack()
        return ProcessingStatus.acked
