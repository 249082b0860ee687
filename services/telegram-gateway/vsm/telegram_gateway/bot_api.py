"""The bot's link to Telegram's Bot API: python-telegram-bot's Application, driven by hand
(the kit owns the event loop).

Built at start-up against `TELEGRAM_API_BASE_URL`; long polling by default, or registered as
a webhook with its secret token (updates then arrive through `webhook.py` and the broker).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import Application, BaseHandler, TypeHandler

from vsm.telegram_gateway import commands
from vsm.telegram_gateway.settings import Settings

App = Application[Any, Any, Any, Any, Any, Any]


Admit = Callable[[Update, Any], Coroutine[Any, Any, None]]
OnError = Callable[[object, Any], Coroutine[Any, Any, None]]


def build_application(
    settings: Settings,
    handlers: list[BaseHandler[Any, Any, Any]],
    admit: Admit,
    on_error: OnError,
) -> App:
    """`admit` runs first for every update (group -1) and may stop it there."""
    token = settings.telegram_bot_token
    assert token is not None
    base = settings.telegram_api_base_url.rstrip("/")
    builder = (
        Application.builder()
        .token(token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
    )
    if settings.webhook:
        builder = builder.updater(None)
    app = builder.build()
    app.add_handler(TypeHandler(Update, admit), group=-1)
    app.add_handlers(handlers)
    app.add_error_handler(on_error)
    return app


async def start_application(app: App, settings: Settings) -> None:
    """Initialise, register the menu, then poll or register the webhook, then start."""
    await app.initialize()
    menu = [BotCommand(name, what) for name, what in commands.MENU.items()]
    await app.bot.set_my_commands(menu)
    if settings.webhook:
        secret = settings.telegram_webhook_secret
        await app.bot.set_webhook(
            str(settings.telegram_webhook_url),
            secret_token=secret.get_secret_value() if secret else None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        assert app.updater is not None
        await app.bot.delete_webhook()
        await app.updater.start_polling(
            timeout=settings.telegram_poll_timeout_s, allowed_updates=Update.ALL_TYPES
        )
    await app.start()


async def stop_application(app: App) -> None:
    """The reverse of `start_application`; the last polled offset is confirmed on the way."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
