"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.queen import handlers
from vsm.queen.domain import HealthBoard
from vsm.queen.settings import Settings

SERVICE = "queen"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    handlers.register(runtime.bus, HealthBoard())
    return runtime.http_app()
