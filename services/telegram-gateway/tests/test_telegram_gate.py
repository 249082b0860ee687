"""Who may talk to the bot, one refusal per stranger, each update once, alert buttons."""

from __future__ import annotations

from vsm.contract.operations import CommandError, CommandResult
from vsm.telegram_gateway.assistant import NOT_CONFIGURED, chat_text
from vsm.telegram_gateway.gate import ChatGate, UpdateLog
from vsm.telegram_gateway.operators import AlertButtons, acknowledged_by
from vsm.telegram_gateway.webhook import secret_matches, update_id_of


def test_allowed_chats_and_operators_pass_strangers_are_refused_once() -> None:
    gate = ChatGate(frozenset({1}), frozenset({2}))
    assert gate.admit(1) == "allowed"
    assert gate.admit(2) == "allowed"
    assert gate.admit(3) == "refuse"
    assert gate.admit(3) == "ignore"
    assert gate.admit(None) == "ignore"
    assert gate.is_operator(2)
    assert not gate.is_operator(1)


def test_an_empty_allow_list_lets_nobody_in() -> None:
    assert ChatGate(frozenset(), frozenset()).admit(1) == "refuse"


def test_update_ids_are_seen_once_within_the_window() -> None:
    log = UpdateLog(limit=2)
    assert log.first_time(1)
    assert not log.first_time(1)
    assert log.first_time(2)
    assert log.first_time(3)
    assert log.first_time(1)  # forgotten beyond the window


def test_alert_buttons_carry_the_alert_id_within_64_bytes() -> None:
    buttons = AlertButtons()
    assert buttons.data_for("al-1234") == "ack:al-1234"
    assert buttons.alert_of("ack:al-1234") == "al-1234"
    long_id = "a" * 100
    data = buttons.data_for(long_id)
    assert len(data.encode()) <= 64
    assert buttons.alert_of(data) == long_id
    assert buttons.alert_of("spawn:worker") is None
    assert buttons.alert_of("ack:#unknown") is None
    assert acknowledged_by(None, 7) == "telegram:7"
    assert acknowledged_by("ops", 7) == "telegram:ops"


def result(**fields: object) -> CommandResult:
    base: dict[str, object] = {
        "agent_id": "a1",
        "command_id": "c1",
        "command_type": "chat",
        "processing_time_ms": 1.0,
    }
    return CommandResult.model_validate(base | fields)


def test_chat_text_explains_a_missing_key_and_other_errors() -> None:
    assert chat_text(result(status="ok", result={"text": "hello"})) == "hello"
    missing = CommandError(code="llm_not_configured", message="no key")
    assert chat_text(result(status="error", error=missing)) == NOT_CONFIGURED
    failed = CommandError(code="llm_unavailable", message="overloaded")
    assert chat_text(result(status="error", error=failed)) == (
        "The assistant could not answer (llm_unavailable): overloaded"
    )


def test_the_webhook_secret_must_be_present_and_equal() -> None:
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cret", "guess")
    assert not secret_matches("s3cret", None)
    assert not secret_matches(None, "anything")
    assert not secret_matches("", "")


def test_only_a_readable_update_gets_through_the_webhook_door() -> None:
    message = {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"}
    assert update_id_of({"update_id": 3, "message": message}) == 3
    assert update_id_of({"update_id": 3}) == 3
    assert update_id_of({"update_id": True}) is None
    assert update_id_of({"update_id": 3, "message": {"text": "hi"}}) is None
    assert update_id_of([1]) is None


def test_the_strangers_remembered_are_bounded_the_latest_kept() -> None:
    gate = ChatGate(frozenset({1}), frozenset(), refused_limit=3)
    assert [gate.admit(chat) for chat in (10, 11, 12)] == ["refuse"] * 3
    assert gate.admit(10) == "ignore"  # 10 is now the latest seen
    assert [gate.admit(chat) for chat in range(100, 1100)] == ["refuse"] * 1000
    assert len(gate._refused) == 3
    assert gate.admit(1099) == "ignore"
    assert gate.admit(10) == "refuse"  # forgotten: refused once more, never let in
    assert gate.admit(1) == "allowed"
