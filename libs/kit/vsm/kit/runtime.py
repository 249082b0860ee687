"""A service's runtime: settings -> logging, telemetry, broker, bus, heartbeat -> HTTP app."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from types import FrameType, TracebackType
from typing import Any

import structlog
import uvicorn
from aiormq.exceptions import (
    AMQPError,
    AuthenticationError,
    ChannelAccessRefused,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
    ConnectionNotAllowed,
    IncompatibleProtocolError,
)
from faststream import BaseMiddleware
from faststream.exceptions import HandlerException
from faststream.rabbit.response import RabbitResponse
from faststream.rabbit.schemas import Channel
from litestar import Litestar
from litestar.datastructures import State
from litestar.types import ASGIApp, ControllerRouterHandler
from opentelemetry import trace
from uvicorn.config import STARTUP_FAILURE

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping, Pong
from vsm.kit import memory
from vsm.kit.addresses import BrokerAddresses
from vsm.kit.bus import Bus
from vsm.kit.consumer import DirectConsumers
from vsm.kit.deadletter import (
    MessageGuard,
    dead_letter_middleware,
    decode_json,
    pause_before_redelivery,
)
from vsm.kit.health import HealthReporter
from vsm.kit.http import create_http_app, metrics_port
from vsm.kit.logs import configure_logging
from vsm.kit.names import Namespace
from vsm.kit.settings import ServiceSettings
from vsm.kit.telemetry import (
    amqp_metrics,
    amqp_metrics_middleware,
    create_telemetry,
    messaging_middleware,
)

__all__ = [
    "RECONNECT_INTERVAL_S",
    "START_ATTEMPTS",
    "Hook",
    "PacedRedelivery",
    "QuietServer",
    "Runtime",
    "serve",
    "transient",
]

Hook = Callable[[], Awaitable[None]]
log = structlog.get_logger("vsm.runtime")

RECONNECT_INTERVAL_S = 1.0
"""Between attempts to reach a lost broker (aio-pika's default is 5 s)."""

START_ATTEMPTS = 5
"""Attempts at the broker part of a start-up (declare the topology, start consuming) before
the service gives up (uvicorn's exit 3); the pause between attempts grows by
`RECONNECT_INTERVAL_S` each time."""

_REFUSALS = (
    ChannelPreconditionFailed,  # declared otherwise already: the same again is refused again
    ChannelAccessRefused,
    AuthenticationError,
    ConnectionNotAllowed,
    IncompatibleProtocolError,
)


def transient(error: BaseException) -> bool:
    """Whether a failed start-up may pass when tried again: a connection or channel the
    broker closed (e.g. `INTERNAL_ERROR - timed out consuming from quorum queue`, when a
    queue another service has just declared has no leader yet on a loaded broker), a
    timeout, a queue that went away. Not a refusal that would only be repeated."""
    if isinstance(error, _REFUSALS):
        return False
    return isinstance(error, AMQPError | ConnectionError | TimeoutError | ChannelInvalidStateError)


class PacedRedelivery(BaseMiddleware[Any, Any]):
    """Holds a message whose handler failed unexpectedly for a growing pause before the nack,
    so a failing handler is retried a few times a second, not in a hot loop, and a passing
    fault has time to pass before the broker's delivery limit dead-letters the message."""

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        if exc_val is None or isinstance(exc_val, HandlerException | asyncio.CancelledError):
            return False
        await pause_before_redelivery(self.msg.headers)
        return False


class Runtime:
    """Everything a service needs from the outside world, built once from its settings."""

    def __init__(self, service: str, settings: ServiceSettings) -> None:
        self.service = service
        self.settings = settings
        configure_logging(service, settings.log_level, settings.log_format)
        self.telemetry = create_telemetry(service, tracing=settings.tracing)
        if settings.tracing:
            log.warning(
                "tracing_setting_deprecated",
                hint="TRACING is deprecated: set OTEL_TRACES_EXPORTER=otlp (or console, or "
                "none for trace ids in the logs only) and OTEL_EXPORTER_OTLP_ENDPOINT",
            )
        if self.telemetry.tracing:
            # The global provider: what the kit's outbound HTTP and LLM spans are made with.
            trace.set_tracer_provider(self.telemetry.tracer_provider)
        self.addresses = BrokerAddresses(settings.amqp_url)
        self.broker = self.addresses.rabbit_broker(
            default_channel=Channel(
                prefetch_count=settings.prefetch_count,
                publisher_confirms=True,
                on_return_raises=True,
            ),
            decoder=decode_json,
            timeout=settings.connect_timeout_s,
            reconnect_interval=RECONNECT_INTERVAL_S,
            on_close=[self._connection_lost],
            on_reconnected=[self._reconnected],
            graceful_timeout=settings.shutdown_grace_s,
            app_id=f"vsm/{service}",
            logger=logging.getLogger(f"vsm.{service}.broker"),
            log_level=logging.DEBUG,
            description=f"vsm {service}",
        )
        guard = MessageGuard.from_settings(service, settings, self.telemetry.registry)
        prometheus = amqp_metrics_middleware(self.telemetry, service)
        # What the kit publishes and consumes without FastStream is measured (and shown on the
        # dashboards) as FastStream measures what goes through it.
        measured = amqp_metrics(self.telemetry, service)
        traced = self.telemetry.tracing
        tracer = self.telemetry.tracer_provider.get_tracer("vsm.kit") if traced else None
        self.bus = Bus(
            self.broker,
            service=service,
            namespace=Namespace(settings.vsm_namespace),
            vsm_id=settings.vsm_id,
            telemetry=self.telemetry,
            request_timeout_s=settings.request_timeout_s,
            guard=guard,
            metrics=measured,
            tracer=tracer,
            dead_letter_cap=settings.dead_letter_cap(),
            log_retention=settings.log_retention(),
        )
        around: list[Any] = []
        if traced:  # spans are costly per message (`make bench`): opt in
            around.append(messaging_middleware(self.telemetry.tracer_provider))
        around += [prometheus, PacedRedelivery]  # outside the dead-lettering of bad input
        bus = self.bus

        def middlewares(queue: str) -> tuple[Any, ...]:
            guarded = dead_letter_middleware(queue, bus.dead_letter, bus.handler_failed, guard)
            return (*around, guarded)

        self.bus.middlewares = middlewares
        self.direct = DirectConsumers(
            self.bus,
            prefetch_count=settings.prefetch_count,
            grace_s=settings.shutdown_grace_s,
            metrics=measured,
            tracer=tracer,
        )
        """Queues consumed without FastStream (e.g. S1 agents' own queues)."""
        self.health = HealthReporter(
            self.bus, instance=settings.instance_id, interval_s=settings.health_interval
        )
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self.connected = False
        """Up from start-up, down from a lost connection until its channels are restored."""
        self._answer_pings()
        self.bus.interface.sends(
            topology.DEAD_LETTER,
            routing_key="{queue}",
            description="What this service could not process (any type), with the reason in "
            "the headers `x-vsm-dead-letter-reason` and `-detail`; routed by the name of the queue "
            "it came from.",
        )

    def _answer_pings(self) -> None:
        bus, instance = self.bus, self.settings.instance_id

        @bus.handle(topology.requests_queue(self.service), Ping)
        async def on_ping(envelope: Envelope[Ping]) -> RabbitResponse:
            return bus.reply(Pong(service=bus.service, instance=instance), cause=envelope)

        bus.interface.answers(topology.requests_queue(self.service), Pong)

    def on_start(self, hook: Hook) -> None:
        """Run `hook` once the bus is up (e.g. start a scheduler)."""
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Run `hook` before the bus stops, in reverse order of registration."""
        self._on_stop.append(hook)

    def _connection_lost(self, _: object, error: BaseException | None) -> None:
        if self.connected:
            self.connected = False
            log.warning("broker_connection_lost", error=repr(error))

    def _reconnected(self, _: object) -> None:
        # aio-pika calls this once every channel (queues, bindings, consumers) is restored.
        self.connected = True
        log.info("broker_reconnected")

    async def readiness(self) -> dict[str, bool]:
        return {
            "broker": self.connected and await self.broker.ping(timeout=1.0),
            "topology": self.bus.declared,
        }

    async def start_bus(self) -> None:
        """Connect and start the bus. A transient failure (see `transient`) is logged with
        its cause and tried again from a new connection, up to `START_ATTEMPTS` in all; a
        broker that does not answer at all stops the start-up as before (`CONNECT_TIMEOUT_S`)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            await self.addresses.connect_broker(self.broker)
            try:
                await self.bus.start()
            except Exception as error:
                if attempt == START_ATTEMPTS or not transient(error):
                    raise
                log.warning(
                    "broker_start_failed",
                    attempt=attempt,
                    of=START_ATTEMPTS,
                    error=repr(error),
                    exc_info=error,
                )
                with suppress(Exception):  # what was opened goes; the next attempt starts anew
                    await self.bus.stop()
                await asyncio.sleep(RECONNECT_INTERVAL_S * attempt)
            else:
                return

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        await self.start_bus()
        self.connected = True
        for hook in self._on_start:
            await hook()
        self.health.start()
        memory.release()  # what start-up freed goes back to the system
        log.info("service_started", instance=self.settings.instance_id)
        try:
            yield
        finally:
            self.connected = False  # not ready from here on; and the close is no lost connection
            await self.health.stop()
            for hook in reversed(self._on_stop):
                await hook()
            await self.direct.stop()
            await self.bus.stop()
            log.info("service_stopped", instance=self.settings.instance_id)

    def http_app(
        self, route_handlers: Sequence[ControllerRouterHandler] = (), **options: Any
    ) -> Litestar:
        return create_http_app(
            registry=self.telemetry.registry,
            readiness=self.readiness,
            route_handlers=route_handlers,
            lifespan=[self.lifespan],
            title=f"vsm {self.service}",
            tracer_provider=self.telemetry.tracer_provider if self.telemetry.tracing else None,
            state=State({"runtime": self}),
            **options,
        )


class QuietServer(uvicorn.Server):
    """uvicorn's server, its own clock woken once a second (to refresh the `Date` header)
    rather than uvicorn's ten times, and at once by SIGTERM/SIGINT: an idle service's fixed
    cost is mostly such wake-ups."""

    TICK_S = 1.0
    TICKS_PER_DATE = 10
    """uvicorn's `on_tick` refreshes the `Date` header on every tenth of its 0.1 s ticks."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def main_loop(self) -> None:
        woken = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), woken)
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            with suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self.TICK_S)
            counter = (counter + self.TICKS_PER_DATE) % 864_000
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._wake is not None:  # the signal interrupted the loop's wait: wake it now
            loop, woken = self._wake
            loop.call_soon_threadsafe(woken.set)


def serve(app: Litestar, settings: ServiceSettings) -> None:
    """Run `app` until SIGTERM/SIGINT; uvicorn then runs the lifespan's graceful shutdown.
    With `METRICS_PORT`, the same server also listens there, for `GET /metrics` only."""
    served: ASGIApp = app
    if settings.metrics_port is not None:
        runtime: Runtime = app.state.runtime
        served = metrics_port(app, runtime.telemetry.registry, settings.metrics_port)
    config = uvicorn.Config(
        served,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
    )
    sockets = [config.bind_socket()]
    if settings.metrics_port is not None:  # bound as uvicorn binds; logging left as it is
        scrape = uvicorn.Config(
            served, host=settings.http_host, port=settings.metrics_port, log_config=None
        )
        sockets.append(scrape.bind_socket())
    server = QuietServer(config)
    with suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
