"""The bot in webhook mode: the secret is checked on every request, accepted updates go
through `vsm.telegram.commands`; and, with no Anthropic key anywhere, free text gets a clear
explanation while commands still work."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.fake_telegram import FakeTelegram
from tests.support.probe import Probe
from vsm.contract.telegram import TELEGRAM, TELEGRAM_COMMANDS, ChatMessage, send_key
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

PERSON = 1001
SECRET = secrets.token_urlsafe(24)
HOOK = "https://bot.example.test/telegram/webhook"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def system_env(telegram: FakeTelegram) -> dict[str, str]:
    return {
        **telegram.env(),
        "ANTHROPIC_API_KEY": "",
        "TELEGRAM_ALLOWED_CHAT_IDS": str(PERSON),
        "TELEGRAM_WEBHOOK_URL": HOOK,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }


@pytest.fixture
async def hook(system: LocalSystem, telegram: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    telegram.wait_until(lambda: telegram.webhook is not None, timeout=30)
    async with httpx.AsyncClient(base_url=system.url("telegram-gateway"), timeout=10) as client:
        yield client


async def post(
    client: httpx.AsyncClient, update: dict[str, Any], secret: str | None = SECRET
) -> httpx.Response:
    headers = {} if secret is None else {HEADER: secret}
    return await client.post("/telegram/webhook", json=update, headers=headers)


async def test_the_webhook_is_registered_with_its_secret(
    hook: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    assert telegram.webhook is not None
    assert telegram.webhook["url"] == HOOK
    assert telegram.webhook["secret_token"] == SECRET
    assert not telegram.calls_to("getUpdates")
    assert [c["command"] for c in telegram.commands][:3] == ["start", "help", "status"]


async def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_processed(
    hook: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    before = len(telegram.sent(PERSON))
    missing = await post(hook, telegram.message_update(PERSON, "/help"), secret=None)
    wrong = await post(hook, telegram.message_update(PERSON, "/help"), secret="guess")
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert missing.json()["error"] == "forbidden"
    accepted = await post(hook, telegram.message_update(PERSON, "/status"))
    assert accepted.status_code == 200
    [reply] = telegram.wait_for_messages(PERSON, 1, 30, after=before)
    assert reply["text"].startswith("System root:")  # the /help updates never ran
    assert len(telegram.sent(PERSON)) == before + 1


async def test_bad_bodies_get_a_clear_400(hook: httpx.AsyncClient) -> None:
    bodies: list[Any] = [
        {"message": {}},
        {"update_id": "one"},
        {"update_id": 7, "message": "not a message"},
        {"update_id": 8, "message": {"text": "no chat, no date"}},
        ["not", "an", "update"],
    ]
    for body in bodies:
        response = await hook.post("/telegram/webhook", json=body, headers={HEADER: SECRET})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_update"
    garbage = await hook.post("/telegram/webhook", content=b"{nope", headers={HEADER: SECRET})
    assert garbage.status_code == 400


async def test_a_redelivered_update_is_answered_once(
    hook: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    before = len(telegram.sent(PERSON))
    update = telegram.message_update(PERSON, "/help")
    assert (await post(hook, update)).status_code == 200
    assert (await post(hook, update)).status_code == 200  # Telegram retried
    await post(hook, telegram.message_update(PERSON, "/viability"))
    help_, viability = telegram.wait_for_messages(PERSON, 2, 30, after=before)
    assert "/signal" in help_["text"]
    assert viability["text"].startswith("Viability of root:")
    assert len(telegram.sent(PERSON)) == before + 2


async def test_free_text_without_an_anthropic_key_is_explained(
    hook: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    before = len(telegram.sent(PERSON))
    await post(hook, telegram.message_update(PERSON, "how are we doing?"))
    [reply] = telegram.wait_for_messages(PERSON, 1, 30, after=before)
    assert reply["text"].startswith("The assistant is not available: no Anthropic API key")
    await post(hook, telegram.message_update(PERSON, "/agents"))
    [agents] = telegram.wait_for_messages(PERSON, 1, 30, after=before + 1)
    assert "llm_worker" in agents["text"]  # commands still work


async def test_other_systems_can_send_to_an_allowed_chat(
    hook: httpx.AsyncClient, telegram: FakeTelegram, system_probe: Probe
) -> None:
    before = len(telegram.sent(PERSON))
    note = ChatMessage(chat_id=PERSON, text="Nightly audit finished: all agents healthy.")
    await system_probe.bus.publish(TELEGRAM, note, routing_key=send_key(PERSON))
    [sent] = telegram.wait_for_messages(PERSON, 1, 30, after=before)
    assert sent["text"] == note.text


async def test_a_message_for_a_chat_not_allowed_is_dead_lettered_with_its_reason(
    hook: httpx.AsyncClient, telegram: FakeTelegram, system_probe: Probe
) -> None:
    note = ChatMessage(chat_id=3003, text="not for strangers")
    await system_probe.bus.publish(TELEGRAM, note, routing_key=send_key(3003))
    parked = await system_probe.get(TELEGRAM_COMMANDS.dead_letter_queue, timeout=15)
    assert (parked.headers or {})[REASON_HEADER] == "chat_not_allowed"
    assert not telegram.sent(3003)
