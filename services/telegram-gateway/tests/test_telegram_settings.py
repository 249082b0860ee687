"""The bot's settings as operators write them in the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vsm.telegram_gateway.settings import Settings


def test_chat_ids_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "1, -100200,")
    monkeypatch.setenv("TELEGRAM_OPERATOR_CHAT_IDS", "7")
    settings = Settings()
    assert settings.telegram_allowed_chat_ids == frozenset({1, -100200})
    assert settings.telegram_operator_chat_ids == frozenset({7})
    assert not settings.bot_enabled


def test_without_a_token_the_bot_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    assert not Settings().bot_enabled
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    assert Settings().bot_enabled


def test_a_webhook_needs_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example/telegram/webhook")
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings()
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s")
    assert Settings().webhook


def test_a_bad_chat_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "1,me")
    with pytest.raises(ValidationError):
        Settings()
