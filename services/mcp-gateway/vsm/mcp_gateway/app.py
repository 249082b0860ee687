"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> the edge's gate -> REST routes,
MCP and the console -> HTTP app."""

from litestar import Litestar

from vsm.kit.dead_letters import DeadLetters
from vsm.kit.runtime import Runtime
from vsm.mcp_gateway import access, asks, console, crosssite, rest
from vsm.mcp_gateway.mcp import endpoint as mcp_endpoint
from vsm.mcp_gateway.rate import RateLimiter
from vsm.mcp_gateway.rest import dead_letters
from vsm.mcp_gateway.rest.common import BEARER, EXCEPTION_HANDLERS, OPENAPI_COMPONENTS
from vsm.mcp_gateway.settings import Settings

SERVICE = "mcp-gateway"


def create_app(settings: Settings) -> Litestar:
    tokens = access.Tokens.from_settings(settings)  # a bad token stops start-up here
    runtime = Runtime(SERVICE, settings)
    asks.declare(runtime.bus.interface)
    state = "enabled" if tokens.configured else "disabled (no token configured)"
    runtime.health.add_details(lambda: {"mcp": state, "rest": state})
    letters = DeadLetters(runtime.bus)
    fill = dead_letters.fill_watch(
        letters,
        settings.dead_letter_cap(),
        runtime.telemetry.registry,
        settings.dead_letter_watch_s,
    )
    runtime.on_start(fill.start)
    runtime.on_stop(fill.stop)
    room = console.mount(runtime, settings, tokens.scope_of, letters)
    gate = access.gate(
        crosssite.SameSite.from_settings(settings), tokens, RateLimiter(settings.rest_rate_limit)
    )
    return runtime.http_app(
        [
            *rest.CONTROLLERS,
            mcp_endpoint.mount(runtime, settings, tokens),
            *room.routes,
        ],
        dependencies=rest.dependencies(
            runtime.bus,
            letters,
            settings.rest_bulk_spawn_max,
            settings.rest_bulk_spawn_timeout_s,
            settings.rest_bulk_terminate_max,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        cors_config=crosssite.cors(settings),
        # The console's bridge first: it turns a console session into the bearer header the
        # gate then checks like any other.
        middleware=[room.middleware, gate],
        security=[{BEARER: []}],
        # Every route's body cap (routes may set a smaller one); OpenAPI states it (413).
        request_max_body_size=settings.rest_max_body_bytes,
        openapi_components=OPENAPI_COMPONENTS,
    )
