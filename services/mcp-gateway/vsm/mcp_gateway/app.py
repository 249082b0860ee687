"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> the edge's gate -> REST routes and
MCP -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.mcp_gateway import (
    access,
    agents,
    api,
    crosssite,
    mcp_server,
    recursion,
    system2,
    system3,
    system4,
    system5,
)
from vsm.mcp_gateway.settings import Settings

SERVICE = "mcp-gateway"


def create_app(settings: Settings) -> Litestar:
    tokens = access.Tokens.from_settings(settings)  # a bad token stops start-up here
    runtime = Runtime(SERVICE, settings)
    state = "enabled" if tokens.configured else "disabled (no token configured)"
    runtime.health.add_details(lambda: {"mcp": state, "rest": state})
    return runtime.http_app(
        [
            api.SystemController,
            system2.System2Controller,
            system3.System3Controller,
            system4.System4Controller,
            system5.System5Controller,
            agents.AgentsController,
            recursion.RecursionController,
            mcp_server.mount(runtime, settings, tokens),
        ],
        dependencies=api.dependencies(runtime.bus) | agents.dependencies(),
        exception_handlers=api.EXCEPTION_HANDLERS,
        cors_config=crosssite.cors(settings),
        middleware=[access.gate(crosssite.SameSite.from_settings(settings), tokens)],
        security=[{api.BEARER: []}],
        openapi_components=api.OPENAPI_COMPONENTS,
    )
