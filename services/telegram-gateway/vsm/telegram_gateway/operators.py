"""S5's operator alerts in the operators' chats, with a button whose press acknowledges them,
and the decisions S5 holds for a person, with Approve and Reject.

The button carries the alert id itself (`ack:<alert_id>`), so a press still works after the
gateway restarts; an id too long for Telegram's 64-byte callback data is kept here instead.
An approval's buttons carry its (short) id and the verdict: `apv:<approval_id>:<y|n>`.
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


APPROVAL_PREFIX = "apv:"
VERDICTS = {"y": True, "n": False}


def approval_markup(approval_id: str) -> InlineKeyboardMarkup:
    approve = InlineKeyboardButton("Approve", callback_data=f"{APPROVAL_PREFIX}{approval_id}:y")
    reject = InlineKeyboardButton("Reject", callback_data=f"{APPROVAL_PREFIX}{approval_id}:n")
    return InlineKeyboardMarkup([[approve, reject]])


def approval_of(data: str) -> tuple[str, bool] | None:
    """The approval id and verdict (approve?) a pressed button stands for; None otherwise."""
    if not data.startswith(APPROVAL_PREFIX):
        return None
    approval_id, _, verdict = data[len(APPROVAL_PREFIX) :].rpartition(":")
    if not approval_id or verdict not in VERDICTS:
        return None
    return approval_id, VERDICTS[verdict]
