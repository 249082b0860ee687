"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> REST routes, MCP, console -> HTTP app."""

from litestar import Litestar

from vsm.kit.dead_letters import DeadLetters
from vsm.kit.runtime import Runtime
from vsm.mcp_gateway import (
    agents,
    api,
    console,
    dead_letters,
    mcp_server,
    operators,
    recursion,
    system2,
    system3,
    system4,
    system5,
)
from vsm.mcp_gateway.console.interim_tokens import scope_of_settings
from vsm.mcp_gateway.settings import Settings

SERVICE = "mcp-gateway"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    letters = DeadLetters(runtime.bus)
    room = console.mount(runtime, settings, scope_of_settings(settings), letters)
    return runtime.http_app(
        [
            api.SystemController,
            system2.System2Controller,
            system3.System3Controller,
            system4.System4Controller,
            system5.System5Controller,
            agents.AgentsController,
            recursion.RecursionController,
            operators.OperatorsController,
            dead_letters.DeadLettersController,
            mcp_server.mount(runtime, settings),
            *room.routes,
        ],
        dependencies=api.dependencies(runtime.bus)
        | agents.dependencies()
        | dead_letters.dependencies(letters),
        exception_handlers=api.EXCEPTION_HANDLERS,
        cors_config=mcp_server.cors(settings),
        middleware=[room.middleware],
    )
