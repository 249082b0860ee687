"""S5's operator alerts in the operators' chats, with a button whose press acknowledges them.

The button carries the alert id itself (`ack:<alert_id>`), so a press still works after the
gateway restarts; an id too long for Telegram's 64-byte callback data is kept here instead.
"""

from __future__ import annotations

import hashlib

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

ACK_PREFIX = "ack:"
CALLBACK_LIMIT = 64


class AlertButtons:
    def __init__(self) -> None:
        self._long_ids: dict[str, str] = {}

    def data_for(self, alert_id: str) -> str:
        data = f"{ACK_PREFIX}{alert_id}"
        if len(data.encode()) <= CALLBACK_LIMIT:
            return data
        token = "#" + hashlib.sha256(alert_id.encode()).hexdigest()[:40]
        self._long_ids[token] = alert_id
        return f"{ACK_PREFIX}{token}"

    def alert_of(self, data: str) -> str | None:
        """The alert id a pressed button stands for; None for anything else."""
        if not data.startswith(ACK_PREFIX):
            return None
        rest = data[len(ACK_PREFIX) :]
        if rest.startswith("#"):
            return self._long_ids.get(rest)
        return rest or None

    def markup(self, alert_id: str) -> InlineKeyboardMarkup:
        button = InlineKeyboardButton("Acknowledge", callback_data=self.data_for(alert_id))
        return InlineKeyboardMarkup([[button]])


def acknowledged_by(username: str | None, user_id: int) -> str:
    return f"telegram:{username or user_id}"
