"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> bot -> HTTP app."""

from litestar import Litestar

from vsm.kit.runtime import Runtime
from vsm.telegram_gateway.settings import Settings

SERVICE = "telegram-gateway"


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    bot = "enabled" if settings.telegram_bot_token else "disabled"
    runtime.health.add_details(lambda: {"bot": bot})
    return runtime.http_app()
