"""The webhook Telegram posts updates to, served by this service's own HTTP app.

Every request must carry the secret in `X-Telegram-Bot-Api-Secret-Token` (missing or wrong:
403, nothing processed). An accepted update is parked on `vsm.telegram.commands` before
Telegram gets its 200, so an update Telegram considers delivered is never lost.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency

from vsm.contract.telegram import TelegramUpdate
from vsm.telegram_gateway.outlets import Outlets
from vsm.telegram_gateway.settings import Settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/telegram/webhook"


def secret_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; no secret configured means no webhook at all."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def update_id_of(body: Any) -> int | None:
    """The update's id when `body` reads as a Bot API Update (as PTB will read it), else None."""
    if not isinstance(body, dict):
        return None
    from telegram import Update  # loaded with the bot already (no bot: no webhook)

    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    try:
        Update.de_json(body, None)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return update_id


def refusal(status: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response({"error": code, "message": message}, status_code=status)


@post(WEBHOOK_PATH, status_code=200, include_in_schema=False)
async def telegram_webhook(
    request: Request[Any, Any, Any],
    outlets: NamedDependency[Outlets],
    settings: NamedDependency[Settings],
) -> Response[dict[str, Any]]:
    """Check the secret, validate the update's shape and park it for the bot."""
    if not (settings.bot_enabled and settings.webhook):
        return refusal(404, "webhook_disabled", "this gateway does not take webhook updates")
    secret = settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER)
    if not secret_matches(secret.get_secret_value() if secret else None, given):
        return refusal(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
    try:
        update = await request.json()
    except Exception:  # any undecodable body is the sender's fault
        update = None
    update_id = update_id_of(update)
    if update_id is None:
        return refusal(400, "invalid_update", "body must be a Telegram Update with update_id")
    await outlets.updates.publish(TelegramUpdate(update_id=update_id, update=update))
    return Response({"ok": True}, status_code=200)
