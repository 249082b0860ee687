"""The HTTP face every service has: liveness, readiness and Prometheus metrics, and a server
span per request when the service traces."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.enums import ScopeType
from litestar.openapi.spec import Components
from litestar.types import (
    ASGIApp,
    ControllerRouterHandler,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from vsm.kit.version import VERSION

__all__ = [
    "CONVERTER",
    "UNTRACED",
    "Readiness",
    "create_http_app",
    "health_routes",
    "http_route",
    "metrics_port",
    "server_spans",
]

Readiness = Callable[[], Awaitable[dict[str, bool]]]
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: frequent, and about the process rather than the system's work."""
CONVERTER = re.compile(r":[a-z]+}")


def health_routes(registry: CollectorRegistry, readiness: Readiness) -> list[Any]:
    @get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers; depends on nothing outside it."""
        return {"status": "ok"}

    @get("/readyz", media_type=MediaType.JSON, include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        """Readiness: the broker answers and this service's topology is declared."""
        checks = await readiness()
        ready = all(checks.values())
        return Response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [healthz, readyz, metrics]


def metrics_port(app: ASGIApp, registry: CollectorRegistry, port: int) -> ASGIApp:
    """`app`, except that a request arriving on `port` can only `GET /metrics`: no other
    route and none of the app's middleware (a scraper inside the cluster reads it there, while
    the app's own port may want a token)."""

    async def by_port(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] != ScopeType.HTTP or server is None or server[1] != port:
            await app(scope, receive, send)
            return
        wanted = scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD")
        body = generate_latest(registry) if wanted else b"this port serves GET /metrics only\n"
        media = CONTENT_TYPE_LATEST if wanted else "text/plain; charset=utf-8"
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200 if wanted else 404,
            "headers": [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))],
        }
        await send(start)
        sent = b"" if scope["method"] == "HEAD" else body
        await send({"type": "http.response.body", "body": sent, "more_body": False})

    return by_port


@lru_cache(maxsize=1024)
def http_route(path_template: str) -> str:
    """Litestar's `/agents/{agent_id:str}` as OpenAPI writes it: `/agents/{agent_id}`."""
    return CONVERTER.sub("}", path_template)


def server_spans(tracer_provider: TracerProvider) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware: a SERVER span per HTTP request (OpenTelemetry's HTTP semantic
    conventions), current while the route runs, so that what the route sends over the bus
    (the envelope's traceparent) continues the request's trace, or the caller's."""
    tracer = tracer_provider.get_tracer("vsm.kit.http")

    def middleware(app: ASGIApp) -> ASGIApp:
        async def traced(scope: Scope, receive: Receive, send: Send) -> None:
            route = http_route(scope.get("path_template", ""))
            if scope["type"] != ScopeType.HTTP or route in UNTRACED:
                await app(scope, receive, send)
                return
            method = scope["method"]
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            attributes = {
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope["scheme"],
                "http.route": route,
            }
            with tracer.start_as_current_span(
                f"{method} {route}",
                context=propagate.extract(headers),
                kind=SpanKind.SERVER,
                attributes=attributes,
            ) as span:

                async def send_traced(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:  # a 4xx is the client's error, not the server's
                            span.set_attribute("error.type", str(status))
                            span.set_status(StatusCode.ERROR)
                    await send(message)

                await app(scope, receive, send_traced)

        return traced

    return middleware


def create_http_app(
    *,
    registry: CollectorRegistry,
    readiness: Readiness,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Any] = (),
    title: str = "vsm",
    tracer_provider: TracerProvider | None = None,
    middleware: Sequence[Any] = (),
    openapi_components: Components | None = None,
    **options: Any,
) -> Litestar:
    """The service's HTTP app; with a `tracer_provider` (tracing on), each request but the
    probes and scrapes gets a server span. `openapi_components` (e.g. security schemes) go
    into its OpenAPI document."""
    from litestar.openapi import OpenAPIConfig

    spans = [server_spans(tracer_provider)] if tracer_provider is not None else []
    return Litestar(
        route_handlers=[*health_routes(registry, readiness), *route_handlers],
        lifespan=list(lifespan),
        openapi_config=OpenAPIConfig(
            title=title,
            version=VERSION,
            path="/schema",
            components=openapi_components or Components(),
        ),
        logging_config=None,
        middleware=[*spans, *middleware],
        **options,
    )
