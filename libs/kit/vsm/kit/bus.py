"""The bus: a service's only way onto the broker.

It applies the deployment's namespace, declares the topology, wraps bodies in envelopes
(joining the causation chain), publishes with confirms and mandatory routing, dead-letters
bad input with its reason, and sends requests that expect a reply.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import DeliveryError
from aiormq import spec
from faststream.middlewares import AckPolicy
from faststream.prometheus.manager import MetricsManager
from faststream.rabbit import (
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
    RabbitRouter,
)
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.response import RabbitResponse
from opentelemetry import propagate, trace
from pydantic import TypeAdapter

from vsm.contract import topology
from vsm.contract.envelope import CONTENT_TYPE, Envelope
from vsm.contract.errors import ErrorReply, Refused, Unprocessable
from vsm.contract.message import Message
from vsm.kit.confirms import nacked
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER, MessageGuard, of_type
from vsm.kit.declarations import Declarations
from vsm.kit.eventlog import LogReading
from vsm.kit.interface import Interface
from vsm.kit.names import Namespace
from vsm.kit.producer import Producer
from vsm.kit.rpc import BrokerUnavailable, Requester
from vsm.kit.telemetry import Telemetry

__all__ = [
    "AnyEnvelope",
    "Bus",
    "NotRoutable",
    "Publisher",
    "RequestFailed",
    "Undelivered",
    "UnexpectedReply",
    "amqp_headers",
    "amqp_properties",
    "expect",
]

log = structlog.get_logger("vsm.bus")

BodyT = TypeVar("BodyT", bound=Message)
ReplyT = TypeVar("ReplyT", bound=Message)
AnyEnvelope = TypeAdapter(Envelope[Message])


class Undelivered(Exception):
    """The broker did not take a mandatory publish: no queue routes it, or a queue refused it."""


class NotRoutable(Undelivered):
    """The broker had no queue for the request (e.g. the addressed agent does not exist)."""


class UnexpectedReply(Exception):
    """The reply was of another type than the requester expected."""


def expect(reply: Envelope[Message], expected: type[ReplyT]) -> ReplyT:
    if not isinstance(reply.data, expected):
        raise UnexpectedReply(f"expected {expected.TYPE}, got {reply.type}")
    return reply.data


class RequestFailed(Refused):
    """The service answered the request with an `ErrorReply`: its refusal, raised here.

    A handler that lets another service's refusal escape has not refused its own request:
    the kit treats it as any unexpected error (see `Bus.handle`); to pass it on, raise a
    `Refused` of the handler's own."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.code, reply.message, reply.details)


class Bus:
    def __init__(
        self,
        broker: RabbitBroker,
        *,
        service: str,
        namespace: Namespace,
        vsm_id: str,
        telemetry: Telemetry,
        request_timeout_s: float,
        guard: MessageGuard | None = None,
        metrics: MetricsManager | None = None,
        tracer: trace.Tracer | None = None,
        dead_letter_cap: topology.DeadLetterCap | None = None,
        log_retention: dict[str, int | str] | None = None,
    ) -> None:
        self.broker = broker
        self.log_retention = dict(
            topology.LOG_RETENTION if log_retention is None else log_retention
        )
        """The retention of the logs with snapshots (`topology.Queue.snapshots`)."""
        self.dead_letter_cap = dead_letter_cap or topology.DeadLetterCap()
        self.guard = guard  # signs and checks messages when signing keys are configured
        self.service = service
        self.source = f"vsm/{service}"
        self.namespace = namespace
        self.vsm_id = vsm_id
        self.telemetry = telemetry
        self.request_timeout_s = request_timeout_s
        self.requester = Requester()
        self.interface = Interface()
        """What this service sends and receives: its AsyncAPI document."""
        self.producer = Producer(self.source, guard, metrics, tracer, telemetry.routes)
        self._queues: dict[str, topology.Queue] = {q.name: q for q in topology.SHARED_QUEUES}
        self._subscribers: dict[str, Any] = {}
        self._exchanges: dict[str, RabbitExchange] = {}
        self.declared = False
        self.middlewares: Callable[[str], Sequence[Any]] = lambda _: ()
        """The FastStream middlewares around the subscriber of a queue (by its broker name),
        outermost first: set by the runtime before any handler is registered."""
        self.declarations = Declarations(
            self.connection,
            namespace,
            lambda queue: dict(self.queue(queue).arguments or {}),
            self.dead_letter_cap,
        )
        """What is declared while the service runs (agents' queues, children's inboxes)."""

    async def connection(self) -> AbstractRobustConnection:
        """The broker connection the kit's own channels are opened on (robust: it comes back)."""
        connection: AbstractRobustConnection = await self.broker.connect()
        return connection

    # Topology -----------------------------------------------------------------------
    def exchange(self, exchange: topology.Exchange) -> RabbitExchange:
        known = self._exchanges.get(exchange.name)
        if known is None:
            known = RabbitExchange(
                self.namespace.name(exchange.name), type=ExchangeType(exchange.type), durable=True
            )
            self._exchanges[exchange.name] = known
        return known

    def queue(self, queue: topology.Queue, routing_key: str = "") -> RabbitQueue:
        arguments: dict[str, Any] = dict(queue.arguments)
        if queue.snapshots:
            arguments = {**self.log_retention}
        if queue.kind == "quorum":
            arguments["x-delivery-limit"] = topology.DELIVERY_LIMIT
        if queue.kind == "quorum" and queue.message_ttl_ms is None:
            arguments |= {
                "x-dead-letter-exchange": self.namespace.name(topology.DEAD_LETTER.name),
                "x-dead-letter-routing-key": self.namespace.name(queue.dead_letter_key),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        if queue.message_ttl_ms is not None:
            # Telemetry (heartbeats, performance): a stale reading is meant to vanish, so the
            # broker does not dead-letter these; bad input is still parked by the kit.
            arguments["x-message-ttl"] = queue.message_ttl_ms
        declare: Any = RabbitQueue  # its overloads are per queue type; ours is data
        rabbit_queue: RabbitQueue = declare(
            self.namespace.name(queue.name),
            queue_type=QueueType(queue.kind),
            durable=True,
            arguments=arguments,
            routing_key=routing_key,
        )
        return rabbit_queue

    def log_reading(self, stream: topology.Queue) -> LogReading:
        """The check of a stream's entries as one reader reads them back (`vsm.kit.eventlog`);
        it reads every entry without signing keys."""
        return LogReading(self.guard, stream.name)

    def live_key_ids(self) -> list[str]:
        """The ids of the keys that verify live traffic (none without signing keys): what a
        log's marker records, so that a key retired later signs no later entry."""
        return [] if self.guard is None else [kid for kid, _ in self.guard.keyring.keys]

    def log_only_key_ids(self) -> list[str]:
        """The ids of the keys that verify the logs but no live traffic (`VSM_LOG_KEYS`): keys
        retired from live traffic, named by a log's snapshots (`vsm.kit.snapshots`)."""
        if self.guard is None:
            return []
        live = set(self.live_key_ids())
        return [kid for kid, _ in self.guard.logs.keyring.keys if kid not in live]

    def signature_headers(self, body: bytes, exchange: str, routing_key: str) -> dict[str, str]:
        """The headers that sign `body` for a publish made outside the producer, to `exchange`
        with `routing_key` as the broker names them (none without keys)."""
        return (
            {} if self.guard is None else self.guard.signature_headers(body, exchange, routing_key)
        )

    async def declare(self, *queues: topology.Queue) -> None:
        """Declare exchanges and their fixed joins (`topology.JOINS`), queues, dead-letter queues
        and bindings (idempotent)."""
        for exchange in topology.EXCHANGES:
            await self.broker.declare_exchange(self.exchange(exchange))
        await self.broker.declare_exchange(self.exchange(topology.DEAD_LETTER))
        for join in topology.JOINS:
            source = await self.broker.declare_exchange(self.exchange(join.source))
            destination = await self.broker.declare_exchange(self.exchange(join.destination))
            await destination.bind(source, routing_key=join.routing_key)
        for queue in (*self._queues.values(), *queues):
            self._queues[queue.name] = queue
            if queue.kind == "stream" and queue.name not in self._subscribers:
                # Read by `LogReader`s, not subscribers; one declared with other arguments
                # (retention) is kept as it is, with a warning.
                await self.declarations.stream(queue)
                continue
            declared = await self.broker.declare_queue(self.queue(queue))
            if queue.kind == "quorum":
                await self.declarations.dead_letters(queue.dead_letter_queue, queue.dead_letter_key)
            for binding in queue.bindings:
                target = await self.broker.declare_exchange(self.exchange(binding.exchange))
                await declared.bind(target, routing_key=binding.routing_key)

    async def start(self) -> AbstractRobustConnection:
        connection: AbstractRobustConnection = await self.broker.connect()
        await self.declare()
        await self.broker.start()
        await self.producer.start(connection)
        await self.requester.start(connection)
        self.declared = True
        return connection

    async def stop(self) -> None:
        self.declared = False
        await self.declarations.close()
        await self.requester.stop()
        await self.producer.stop()
        await self.broker.stop()

    # Consuming ----------------------------------------------------------------------
    def handle(
        self, queue: topology.Queue, message: type[Message]
    ) -> Callable[[Callable[..., Any]], Any]:
        """Decorate the handler of `message` envelopes arriving on `queue`.

        The handler takes `Envelope[message]`; a request handler returns `reply(...)`. A
        `Refused` it raises is the request's answer: the requester gets its `ErrorReply`.
        Ack policy: ack once the handler returns (or refuses); bad input (malformed JSON,
        wrong schema, a type no handler here takes) is dead-lettered with its reason and
        then acked; an unexpected error nacks for redelivery, up to the delivery limit,
        after which the broker dead-letters it.
        """
        self.interface.receives(queue, message)
        subscriber = self._subscribers.get(queue.name)
        if subscriber is None:
            self._queues[queue.name] = queue
            first = queue.bindings[0] if queue.bindings else None
            # A router per queue: its middlewares know the queue they guard.
            router = RabbitRouter(middlewares=self.middlewares(self.namespace.name(queue.name)))
            # At 0 from the start, so that an alert on refused dead letters has a series.
            self.telemetry.dead_letters_refused.labels(
                self.service, self.namespace.name(queue.name)
            )
            subscriber = router.subscriber(
                self.queue(queue, routing_key=first.routing_key if first else ""),
                self.exchange(first.exchange) if first else None,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                description=queue.description,
            )
            self.broker.include_router(router)
            self._subscribers[queue.name] = subscriber
        subscribe: Callable[[Callable[..., Any]], Any] = subscriber(filter=of_type(message.TYPE))

        def decorate(handler: Callable[..., Awaitable[Any]]) -> Any:
            return subscribe(self.answering_refusals(handler))

        return decorate

    def answering_refusals(
        self, handler: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """`handler`, answering a `Refused` it raises with its `ErrorReply` (the one place a
        refusal becomes a reply). The signature stays the handler's (`functools.wraps`), so
        FastStream decodes the same arguments."""

        @functools.wraps(handler)
        async def answered(*args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(*args, **kwargs)
            except RequestFailed:
                raise  # another service's refusal: not this request's answer
            except Refused as refused:
                cause = next(
                    (a for a in (*args, *kwargs.values()) if isinstance(a, Envelope)), None
                )
                log.debug("refused", code=refused.code, handler=handler.__name__)
                return self.reply(refused.reply, cause=cause)

        return answered

    def delivery(self) -> RabbitMessage:
        """The message the running handler was called with (its bytes, headers, reply_to).

        Read from FastStream's context here rather than asked for as a `RabbitMessage`
        handler parameter: fast_depends resolves such a parameter in a worker thread, a
        thread hop per message on the hottest paths."""
        message: RabbitMessage = self.broker.context.get_local("message")
        return message

    async def dead_letter(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        bad: Unprocessable,
        routing_key: str | None = None,
    ) -> None:
        """Park `message` on the DLQ of `queue` (by its name, or by `routing_key` where queues
        share a DLQ) with the reason; answer a waiting requester."""
        headers = dict(message.headers or {})
        headers |= {
            REASON_HEADER: bad.reason,
            DETAIL_HEADER: bad.detail[:1024],
            "x-vsm-original-exchange": message.exchange or "",
            "x-vsm-original-routing-key": message.routing_key or "",
            "x-vsm-dead-lettered-by": self.service,
        }
        try:
            await self.producer.publish(
                self.namespace.name(topology.DEAD_LETTER.name),
                routing_key or queue,
                message.body,
                mandatory=True,
                headers=headers,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                type=message.type,
                content_type=message.content_type,
            )
        except DeliveryError:
            # The dead-letter queue is full (`reject-publish`) or gone: the caller nacks the
            # message, which stays on its queue (and goes to the broker's own dead-lettering
            # at the delivery limit); counted, so that an alert says so.
            self.telemetry.dead_letters_refused.labels(self.service, queue).inc()
            log.error("dead_letter_refused", queue=queue, reason=bad.reason)
            raise
        self.telemetry.dead_lettered.labels(self.service, queue, bad.reason).inc()
        log.warning(
            "dead_lettered",
            queue=queue,
            reason=bad.reason,
            detail=bad.detail[:200],
            message_id=message.message_id,
            traceparent=headers.get("traceparent"),
        )
        refusal = ErrorReply(code=bad.reason, message=bad.detail[:4096])
        await self.answer(message.reply_to, message.correlation_id, refusal)

    def handler_failed(
        self, message: AbstractIncomingMessage, queue: str, error: BaseException
    ) -> None:
        """Count and log an unexpected error with the message's trace; it will be redelivered."""
        self.telemetry.handler_failures.labels(self.service, queue, type(error).__name__).inc()
        log.error(
            "handler_failed",
            queue=queue,
            error=repr(error),
            message_id=message.message_id,
            delivery_count=(message.headers or {}).get("x-delivery-count", 0),
            traceparent=(message.headers or {}).get("traceparent"),
            exc_info=error,
        )

    # Publishing ---------------------------------------------------------------------
    def envelope(
        self,
        body: BodyT,
        *,
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        subject: str | None = None,
        priority: int | None = None,
    ) -> Envelope[BodyT]:
        carrier: dict[str, str] = {}
        if self.telemetry.tracing:  # without spans there is no context to carry on
            propagate.inject(carrier)
        return Envelope.wrap(
            body,
            source=self.source,
            cause=cause,
            vsm_id=vsm_id or (None if cause else self.vsm_id),
            subject=subject,
            priority=priority,
            traceparent=carrier.get("traceparent"),
        )

    def publisher(
        self,
        exchange: topology.Exchange,
        schema: type[Message] | Any,
        *,
        routing_key: str = "",
        description: str | None = None,
    ) -> Publisher:
        """A documented (AsyncAPI) publisher of `schema` bodies on `exchange`."""
        for body in getattr(schema, "__args__", (schema,)):  # a union: each of its types
            if _is_message(body):
                self.interface.sends(
                    exchange, body, routing_key=routing_key, description=description or ""
                )
        return Publisher(self, exchange, schema, routing_key=routing_key, description=description)

    async def publish(
        self,
        exchange: topology.Exchange,
        body: Message,
        *,
        routing_key: str = "",
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        subject: str | None = None,
        priority: int | None = None,
        mandatory: bool = True,
    ) -> Envelope[Any]:
        """Publish `body` in a new envelope; raises when the broker cannot route or store it."""
        envelope = self.envelope(
            body, cause=cause, vsm_id=vsm_id, subject=subject, priority=priority
        )
        await self.send(exchange, envelope, routing_key=routing_key, mandatory=mandatory)
        return envelope

    async def send(
        self,
        exchange: topology.Exchange,
        envelope: Envelope[Any],
        *,
        routing_key: str = "",
        mandatory: bool = True,
    ) -> None:
        """Publish an envelope built beforehand (`envelope()`), e.g. one that others name as
        their cause while it is still on its way; raises `Undelivered` when the broker does
        not take it."""
        try:
            await self.producer.publish(
                self.namespace.name(exchange.name),
                routing_key,
                envelope.model_dump_json().encode(),
                mandatory=mandatory,
                **amqp_properties(envelope),
            )
        except DeliveryError as error:
            raise Undelivered(str(error)) from error

    async def append(self, stream: topology.Queue, envelope: Envelope[Any]) -> None:
        """Write `envelope` straight into `stream` (a log's own entry, e.g. its marker),
        confirmed by the broker."""
        await self.producer.publish(
            "",
            self.namespace.name(stream.name),
            envelope.model_dump_json().encode(),
            mandatory=True,
            message_id=envelope.id,
            type=envelope.type,
            content_type=CONTENT_TYPE,
        )

    async def request(
        self,
        service: str,
        operation: str,
        body: Message,
        *,
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        timeout: float | None = None,
    ) -> Envelope[Message]:
        """Ask `service` to do `operation`; its reply envelope, or `RequestFailed`."""
        return await self.ask(
            body,
            exchange=topology.REQUESTS,
            routing_key=topology.request_key(service, operation),
            cause=cause,
            vsm_id=vsm_id,
            timeout=timeout,
        )

    async def query(
        self,
        service: str,
        operation: str,
        body: Message,
        expected: type[ReplyT],
        *,
        vsm_id: str | None = None,
        timeout: float | None = None,
    ) -> ReplyT:
        """`request`, returning the reply body when it is of the `expected` type."""
        reply = await self.request(service, operation, body, vsm_id=vsm_id, timeout=timeout)
        return expect(reply, expected)

    async def ask(
        self,
        body: Message,
        *,
        exchange: topology.Exchange | None = None,
        routing_key: str = "",
        queue: str | None = None,
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        timeout: float | None = None,
    ) -> Envelope[Message]:
        """Publish `body` on `exchange` with `routing_key`, or straight to `queue` (canonical
        name) through the default exchange, and wait for the reply: its envelope, or
        `RequestFailed`, `NotRoutable` (nothing takes it) or `RequestTimeout` (no answer, or
        `BrokerUnavailable`: the broker is away, or refused the request after the retries of
        `vsm.kit.confirms`).
        """
        envelope = self.envelope(body, cause=cause, vsm_id=vsm_id)
        props = amqp_properties(envelope)
        deadline = timeout or self.request_timeout_s
        data = envelope.model_dump_json().encode()
        if queue is not None:
            target, key = "", self.namespace.name(queue)
        elif exchange is not None:
            target, key = self.namespace.name(exchange.name), routing_key
        else:
            raise ValueError("ask needs an exchange or a queue")
        if self.guard is not None:  # requests bypass the broker's middlewares: sign here
            props["headers"] |= self.guard.signature_headers(data, target, key)
        properties = spec.Basic.Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=2,  # persistent
            message_id=props["message_id"],
            correlation_id=envelope.id,
            message_type=props["type"],
            priority=props["priority"],
            headers=props["headers"],
            app_id=self.source,
            expiration=str(int(deadline * 1000)),  # nobody waits for the answer after it
        )
        try:
            raw = await self.requester.request(target, key, data, properties, deadline)
        except DeliveryError as error:
            if nacked(error):  # a refusal, not a return: the queue exists
                raise BrokerUnavailable(f"the broker refused the request to {key!r}") from error
            raise NotRoutable(f"no queue takes {key!r}") from error
        if self.guard is not None and (bad := self.guard.verify(raw, "reply")) is not None:
            raise RequestFailed(ErrorReply(code=bad.reason, message=bad.detail[:4096]))
        reply = AnyEnvelope.validate_json(raw.body)
        if isinstance(reply.data, ErrorReply):
            raise RequestFailed(reply.data)
        return reply

    async def answer(
        self,
        reply_to: str | None,
        correlation_id: str | None,
        body: Message,
        cause: Envelope[Any] | None = None,
    ) -> None:
        """Send the reply to a request now, from inside its handler (nothing without a
        `reply_to`); not mandatory: a requester that gave up is no handler failure."""
        if reply_to:
            envelope = self.envelope(body, cause=cause)
            await self._reply(reply_to, correlation_id, envelope, envelope.model_dump_json())

    async def forward(
        self, reply_to: str | None, correlation_id: str | None, envelope: Envelope[Any]
    ) -> None:
        """Send a reply another service made (its envelope as received) on to the requester
        waiting on `reply_to` (nothing without one); not mandatory."""
        if reply_to:
            body = envelope.model_dump_json(serialize_as_any=True)
            await self._reply(reply_to, correlation_id, envelope, body)

    async def _reply(
        self, reply_to: str, correlation_id: str | None, envelope: Envelope[Any], body: str
    ) -> None:
        await self.producer.publish(
            "",
            reply_to,
            body.encode(),
            mandatory=False,
            persist=False,
            confirmed=False,  # a reply to a direct reply-to: see `vsm.kit.producer`
            correlation_id=correlation_id,
            message_id=envelope.id,
            type=envelope.type,
            content_type=CONTENT_TYPE,
            headers=amqp_headers(envelope),
        )

    def reply(self, body: Message, *, cause: Envelope[Any] | None) -> RabbitResponse:
        """What a request handler returns: the reply envelope, sent to the requester if it
        is still there (not mandatory: a requester that gave up is no handler failure)."""
        envelope = self.envelope(body, cause=cause)
        return RabbitResponse(
            envelope.model_dump_json().encode(),
            mandatory=False,
            content_type=CONTENT_TYPE,
            message_id=envelope.id,
            message_type=envelope.type,
            headers=amqp_headers(envelope),
        )


def amqp_properties(envelope: Envelope[Any]) -> dict[str, Any]:
    """The AMQP properties an envelope is published with: structured-mode CloudEvents (the
    whole event is the body, `CONTENT_TYPE`), its id, correlation, type and priority repeated
    as AMQP properties and a few attributes as headers named as the CloudEvents RabbitMQ
    binding names them (`ce-<attribute>`), so the broker's tools see them; the body is what
    counts. `traceparent` is the W3C header the consumer's trace continues from."""
    return {
        "message_id": envelope.id,
        "correlation_id": envelope.correlation_id,
        "type": envelope.type,
        "priority": envelope.priority,
        "headers": amqp_headers(envelope),
        "content_type": CONTENT_TYPE,
    }


def amqp_headers(envelope: Envelope[Any]) -> dict[str, Any]:
    headers: dict[str, Any] = {"ce-type": envelope.type, "ce-vsmid": envelope.vsm_id}
    if envelope.traceparent:
        headers["traceparent"] = envelope.traceparent
    if envelope.causation_id:
        headers["ce-causationid"] = envelope.causation_id
    return headers


class Publisher:
    """A publisher registered with FastStream so that it appears in the AsyncAPI document."""

    def __init__(
        self,
        bus: Bus,
        exchange: topology.Exchange,
        schema: Any,
        *,
        routing_key: str,
        description: str | None,
    ) -> None:
        self.bus = bus
        self.exchange = exchange
        self.routing_key = routing_key
        self.documented: RabbitPublisher = bus.broker.publisher(
            exchange=bus.exchange(exchange),
            routing_key=routing_key,
            schema=Envelope[schema] if _is_message(schema) else schema,
            description=description or exchange.description,
        )

    async def publish(
        self,
        body: Message,
        *,
        routing_key: str | None = None,
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        subject: str | None = None,
        priority: int | None = None,
        mandatory: bool = True,
    ) -> Envelope[Any]:
        return await self.bus.publish(
            self.exchange,
            body,
            routing_key=self.routing_key if routing_key is None else routing_key,
            cause=cause,
            vsm_id=vsm_id,
            subject=subject,
            priority=priority,
            mandatory=mandatory,
        )


def _is_message(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, Message)
