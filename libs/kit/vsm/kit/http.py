"""The HTTP face every service has: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.types import ControllerRouterHandler
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Readiness = Callable[[], Awaitable[dict[str, bool]]]


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


def create_http_app(
    *,
    registry: CollectorRegistry,
    readiness: Readiness,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Any] = (),
    title: str = "vsm",
    **options: Any,
) -> Litestar:
    from litestar.openapi import OpenAPIConfig

    return Litestar(
        route_handlers=[*health_routes(registry, readiness), *route_handlers],
        lifespan=list(lifespan),
        openapi_config=OpenAPIConfig(title=title, version="0.1.0", path="/schema"),
        logging_config=None,
        **options,
    )
