"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.operations.settings import Settings

SERVICE = "operations"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    return runtime.http_app()
