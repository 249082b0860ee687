"""The Telegram bot end to end: real python-telegram-bot (long polling) against the fake Bot
API, the seven services on a real broker, free text through an llm_worker and the fake
Anthropic API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from scripts.localrun import LocalSystem
from tests.support.fake_anthropic import FakeAnthropic, RecordedRequest
from tests.support.fake_telegram import FakeTelegram
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.contract.system5 import ACK_KEY, AlertAcknowledgement, OperatorAlert

pytestmark = pytest.mark.integration

ANY = TypeAdapter(Envelope[Message])
PERSON = 1001
OPERATOR = 2002
STRANGER = 3003
MENU = ["start", "help", "status", "viability", "agents", "spawn", "signal", "policy", "ask"]


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


ANSWERS = {
    "what is viability?": "Viability is how well the system keeps itself alive.",
    "what did I just ask?": "It was about viability.",
    "tell me everything": "\n".join(f"line {n:05d} " + "x" * 40 for n in range(200)),
}
"""The fake Claude's answers by question: other services may call it too (S5 synthesis)."""


def answer(request: RecordedRequest) -> str:
    messages = request.messages or []
    last = messages[-1]["content"] if messages else ""
    return ANSWERS.get(last, "ok") if isinstance(last, str) else "ok"


def bot_requests(llm: FakeAnthropic) -> list[RecordedRequest]:
    """What the gateway's llm_worker asked Claude (its system prompt names Telegram)."""
    return [r for r in llm.requests if "Telegram" in str(r.system)]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(default_reply=answer) as fake:
        yield fake


@pytest.fixture(scope="module")
def system_env(telegram: FakeTelegram, llm: FakeAnthropic) -> dict[str, str]:
    return {
        **telegram.env(),
        **llm.env(),
        "TELEGRAM_ALLOWED_CHAT_IDS": str(PERSON),
        "TELEGRAM_OPERATOR_CHAT_IDS": str(OPERATOR),
        "TELEGRAM_POLL_TIMEOUT_S": "1",
    }


@pytest.fixture
def bot(system: LocalSystem, telegram: FakeTelegram) -> FakeTelegram:
    """The fake, once the running bot has registered its menu (it is polling by then)."""
    telegram.wait_until(lambda: bool(telegram.commands), timeout=30)
    return telegram


def ask(bot: FakeTelegram, chat_id: int, text: str, replies: int = 1) -> list[str]:
    """Write `text` in `chat_id` and return the texts of the bot's next `replies` messages."""
    before = len(bot.sent(chat_id))
    bot.send(chat_id, text)
    return [m["text"] for m in bot.wait_for_messages(chat_id, replies, 30, after=before)]


async def test_the_menu_is_registered_with_telegram(bot: FakeTelegram) -> None:
    assert [c["command"] for c in bot.commands] == MENU
    assert not bot.calls_to("setWebhook")
    assert bot.calls_to("getUpdates")


async def test_start_and_help_list_every_command(bot: FakeTelegram) -> None:
    for command in ("/start", "/help"):
        [text] = ask(bot, PERSON, command)
        assert all(f"/{name}" in text for name in MENU)


async def test_status_and_viability_come_from_s5(bot: FakeTelegram) -> None:
    [status] = ask(bot, PERSON, "/status")
    assert status.startswith("System root:")
    assert "queen (S5)" in status
    assert "telegram-gateway (gateway)" in status
    [viability] = ask(bot, PERSON, "/viability")
    assert viability.startswith("Viability of root:")
    assert "Pain " in viability


async def test_spawn_then_agents_lists_it(bot: FakeTelegram) -> None:
    [spawned] = ask(bot, PERSON, "/spawn worker")
    assert spawned.startswith("Spawned worker agent ")
    agent_id = spawned.removeprefix("Spawned worker agent ").rstrip(".")
    [agents] = ask(bot, PERSON, "/agents")
    assert f"{agent_id} (worker)" in agents
    [usage] = ask(bot, PERSON, "/spawn")
    assert usage.startswith("Usage: /spawn <type>")
    [refused] = ask(bot, PERSON, "/spawn no_such_type")
    assert refused.startswith("The system said no (")


async def test_signal_publishes_on_the_algedonic_exchange(
    bot: FakeTelegram, system_probe: Probe
) -> None:
    queue = await system_probe.bind_queue("test.telegram.algedonic", topology.ALGEDONIC.name)
    [bad] = ask(bot, PERSON, "/signal pain 2")
    assert "between 0 and 1" in bad
    [sent] = ask(bot, PERSON, "/signal pain 0.7")
    assert sent.startswith("Pain 0.7 sent to S5")
    envelope = ANY.validate_json((await system_probe.get(queue, timeout=10)).body)
    signal = envelope.data
    assert isinstance(signal, AlgedonicSignal)
    assert (signal.kind, signal.intensity) == ("pain", 0.7)
    assert signal.origin == f"telegram-gateway/chat/{PERSON}"
    with pytest.raises(TimeoutError):  # the bad one published nothing
        await system_probe.get(queue, timeout=1)


async def test_policy_lists_and_shows(bot: FakeTelegram) -> None:
    [listed] = ask(bot, PERSON, "/policy")
    assert listed.startswith(("Latest policies:", "No policies yet."))
    [one] = ask(bot, PERSON, "/policy governance")
    assert one.startswith(("governance v", "The system said no (policy_not_found)"))
    [usage] = ask(bot, PERSON, "/policy nonsense")
    assert usage.startswith("Usage: /policy [type]")


async def test_free_text_goes_to_an_llm_worker_with_context_per_chat(
    bot: FakeTelegram, llm: FakeAnthropic
) -> None:
    [first] = ask(bot, PERSON, "what is viability?")
    assert first == ANSWERS["what is viability?"]
    [second] = ask(bot, PERSON, "/ask what did I just ask?")
    assert second == ANSWERS["what did I just ask?"]
    request = bot_requests(llm)[-1]
    texts = [m["content"] for m in request.messages if isinstance(m["content"], str)]
    assert texts == ["what is viability?", "what did I just ask?"]  # multi-turn, per chat
    assert {tool["name"] for tool in request.tools} <= {"current_time", "statistics", "checksum"}
    assert any(c.params.get("chat_id") == PERSON for c in bot.calls_to("sendChatAction"))


async def test_a_long_reply_is_split_into_telegram_sized_messages(
    bot: FakeTelegram, llm: FakeAnthropic
) -> None:
    texts = ask(bot, PERSON, "tell me everything", replies=3)  # ~10 000 characters
    assert all(len(text) <= 4096 for text in texts)
    assert "\n".join(texts) == ANSWERS["tell me everything"]


async def test_a_429_is_waited_out_as_telegram_asks(bot: FakeTelegram) -> None:
    bot.rate_limit("sendMessage", retry_after=1)
    started = len(bot.calls_to("sendMessage"))
    [text] = ask(bot, PERSON, "/help")
    assert "/status" in text
    limited, delivered = bot.calls_to("sendMessage")[started : started + 2]
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 0.9


async def test_a_duplicate_update_is_processed_once(bot: FakeTelegram) -> None:
    update = bot.message_update(PERSON, "/spawn worker")
    before = len(bot.sent(PERSON))
    bot.push_update(update)
    bot.push_update(update)
    bot.send(PERSON, "/viability")  # updates are handled in order: this one comes last
    spawned, status = (m["text"] for m in bot.wait_for_messages(PERSON, 2, 30, after=before))
    assert spawned.startswith("Spawned worker agent")
    assert status.startswith("Viability of root:")
    assert len(bot.sent(PERSON)) == before + 2


async def test_an_edited_command_does_not_run_again(bot: FakeTelegram) -> None:
    before = len(bot.sent(PERSON))
    bot.push_update(bot.message_update(PERSON, "/spawn worker", edited=True))
    [text] = ask(bot, PERSON, "/help")
    assert "/status" in text
    assert len(bot.sent(PERSON)) == before + 1


async def test_a_stranger_gets_one_polite_refusal_and_reaches_nothing(
    bot: FakeTelegram, system_probe: Probe, llm: FakeAnthropic
) -> None:
    queue = await system_probe.bind_queue("test.telegram.stranger", topology.ALGEDONIC.name)
    calls = len(bot_requests(llm))
    [refusal] = ask(bot, STRANGER, "/signal pain 1")
    assert refusal.startswith("Sorry, this bot only talks to")
    bot.send(STRANGER, "hello?")
    bot.send(STRANGER, "/status")
    ask(bot, PERSON, "/help")  # processed after the stranger's updates
    assert len(bot.sent(STRANGER)) == 1
    assert len(bot_requests(llm)) == calls
    with pytest.raises(TimeoutError):
        await system_probe.get(queue, timeout=1)


async def test_an_alert_reaches_operators_and_its_button_acknowledges_it(
    bot: FakeTelegram, system_probe: Probe
) -> None:
    acks = await system_probe.bind_queue("test.telegram.acks", topology.OPERATORS.name, ACK_KEY)
    alert = OperatorAlert(
        alert_id="al-telegram01",
        intervention_id="iv-1",
        severity="critical",
        title="root: error_burst unresolved",
        text="Pain 0.90 for a while",
        pain_level=0.9,
        escalation_level=2,
    )
    before = len(bot.sent(OPERATOR))
    await system_probe.bus.publish(topology.OPERATORS, alert, routing_key="alert.critical")
    [message] = bot.wait_for_messages(OPERATOR, 1, 30, after=before)
    assert "CRITICAL: root: error_burst unresolved" in message["text"]
    [[button]] = message["reply_markup"]["inline_keyboard"]
    assert button["text"] == "Acknowledge"

    bot.press(OPERATOR, message["message_id"], button["callback_data"])
    envelope: Envelope[Any] = ANY.validate_json((await system_probe.get(acks, timeout=15)).body)
    assert isinstance(envelope.data, AlertAcknowledgement)
    assert envelope.data.alert_id == "al-telegram01"
    assert envelope.data.by == "telegram:operator"
    bot.wait_until(lambda: "Acknowledged by" in bot.sent(OPERATOR)[-1]["text"], timeout=15)
    assert bot.calls_to("answerCallbackQuery")
