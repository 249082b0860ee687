"""The Telegram bot's intake: work for the telegram-gateway, and its topology.

`vsm.telegram.commands` (bound to `vsm.telegram`, key `#`) carries `TelegramUpdate`
(key `update`: an update received on the webhook, parked on the broker before Telegram
gets its 200 so an acknowledged update is never lost) and `ChatMessage` (key
`send.<chat_id>`: any system asks the bot to tell a chat something).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from vsm.contract.message import Message
from vsm.contract.topology import Binding, Exchange, Queue

__all__ = [
    "TELEGRAM",
    "TELEGRAM_COMMANDS",
    "UPDATE_KEY",
    "ChatMessage",
    "TelegramUpdate",
    "send_key",
]

TELEGRAM = Exchange(
    "vsm.telegram", "topic", "Work for the Telegram bot: `update`, `send.<chat_id>`."
)
TELEGRAM_COMMANDS = Queue(
    "vsm.telegram.commands",
    (Binding(TELEGRAM, "#"),),
    "Work for the Telegram bot: webhook updates to process, messages to send to chats.",
)
UPDATE_KEY = "update"


def send_key(chat_id: int) -> str:
    """Routing key on `vsm.telegram` for a message to one chat."""
    return f"send.{chat_id}"


class TelegramUpdate(Message):
    """One Bot API `Update`, as Telegram posted it to the webhook."""

    TYPE: ClassVar[str] = "vsm.telegram.update.v1"

    update_id: int
    update: dict[str, Any]


class ChatMessage(Message):
    """Text the bot should send to a chat (split into Telegram-sized messages if long)."""

    TYPE: ClassVar[str] = "vsm.telegram.send.v1"

    chat_id: int
    text: str = Field(min_length=1, max_length=65_536)
