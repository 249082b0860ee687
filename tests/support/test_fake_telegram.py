"""The fake Bot API answers the real python-telegram-bot the way Telegram does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, RetryAfter

from tests.support.fake_telegram import FakeTelegram


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(fake.token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")
    async with client:
        yield client


async def test_get_me_names_the_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "vsm_test_bot"


async def test_sent_messages_are_recorded_per_chat(fake: FakeTelegram, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack:1")]])
    sent = await bot.send_message(42, "hello", reply_markup=markup)
    await bot.send_message(7, "other chat")
    [recorded] = fake.sent(42)
    assert recorded["text"] == "hello"
    assert recorded["message_id"] == sent.message_id
    assert recorded["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ack:1"


async def test_text_over_4096_characters_is_refused(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(42, "x" * 4097)
    await bot.send_message(42, "x" * 4096)
    assert [len(m["text"]) for m in fake.sent(42)] == [4096]


async def test_scripted_429_carries_retry_after(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22's forward-compatible form
    fake.rate_limit("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(42, "too soon")
    assert raised.value.retry_after == timedelta(seconds=3)
    await bot.send_message(42, "now")
    assert [m["text"] for m in fake.sent(42)] == ["now"]


async def test_get_updates_long_polls_and_forgets_confirmed(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.send(42, "/status")
    second = fake.send(42, "hi")
    updates = await bot.get_updates(timeout=1)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message is not None
    assert updates[0].message.text == "/status"
    assert updates[0].message.entities[0].type == "bot_command"
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=0) == ()


async def test_commands_webhook_and_callbacks(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("status", "State")])
    assert [c.command for c in await bot.get_my_commands()] == ["status"]
    await bot.set_webhook("https://example.test/hook", secret_token="s3cret")
    assert fake.webhook is not None
    assert fake.webhook["secret_token"] == "s3cret"
    await bot.delete_webhook()
    assert fake.webhook is None
    sent = await bot.send_message(42, "alert")
    edited = await bot.edit_message_text("alert (acked)", chat_id=42, message_id=sent.message_id)
    assert isinstance(edited, object)
    assert fake.sent(42)[0]["text"] == "alert (acked)"
    assert await bot.answer_callback_query("cq1", text="ok")
    assert await bot.send_chat_action(42, "typing")


async def test_wrong_token_and_unknown_method(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        unknown = await client.post(f"/bot{fake.token}/sendPigeon")
        assert unknown.status_code == 404
        assert unknown.json()["ok"] is False
    stranger = Bot("999:wrong", base_url=f"{fake.url}/bot")
    with pytest.raises(InvalidToken):
        await stranger.initialize()
    await stranger.shutdown()
