"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> REST routes and MCP -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.mcp_gateway import (
    agents,
    api,
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
    runtime = Runtime(SERVICE, settings)
    return runtime.http_app(
        [
            api.SystemController,
            system2.System2Controller,
            system3.System3Controller,
            system4.System4Controller,
            system5.System5Controller,
            agents.AgentsController,
            recursion.RecursionController,
            mcp_server.mount(runtime, settings),
        ],
        dependencies=api.dependencies(runtime.bus) | agents.dependencies(),
        exception_handlers=api.EXCEPTION_HANDLERS,
        cors_config=mcp_server.cors(settings),
    )
