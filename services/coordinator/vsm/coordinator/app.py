"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.coordinator.settings import Settings
from vsm.kit.runtime import Runtime

SERVICE = "coordinator"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    return runtime.http_app()
