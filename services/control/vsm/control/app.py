"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.control.settings import Settings
from vsm.kit.runtime import Runtime

SERVICE = "control"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    return runtime.http_app()
