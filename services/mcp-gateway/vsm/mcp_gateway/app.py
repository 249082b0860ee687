"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> REST routes -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.mcp_gateway import api
from vsm.mcp_gateway.settings import Settings

SERVICE = "mcp-gateway"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    return runtime.http_app(
        [api.SystemController],
        dependencies=api.dependencies(runtime.bus),
        exception_handlers=api.EXCEPTION_HANDLERS,
    )
