"""Getting text to a chat: Telegram's 4096-character limit and its flood control (429)."""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta

import structlog
from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import RetryAfter

MAX_MESSAGE = 4096
log = structlog.get_logger("vsm.telegram.delivery")


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Pieces of at most `limit` characters, cut at a line break or space where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if cut < limit else rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def retry_delay(error: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (PTB 22 warns on reading the int form; we want both)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    retries: int = 3,
    markup: InlineKeyboardMarkup | None = None,
) -> list[Message]:
    """Send `text` as one or more messages, waiting out each 429 as Telegram asks."""
    pieces = split_message(text)
    sent: list[Message] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        sent.append(await _send(bot, chat_id, piece, retries, markup if last else None))
    return sent


async def _send(
    bot: Bot, chat_id: int, text: str, retries: int, markup: InlineKeyboardMarkup | None
) -> Message:
    for attempt in range(retries + 1):
        try:
            return await bot.send_message(chat_id, text, reply_markup=markup)
        except RetryAfter as error:
            if attempt == retries:
                raise
            delay = retry_delay(error)
            log.warning("telegram_flood_control", chat_id=chat_id, retry_after_s=delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
