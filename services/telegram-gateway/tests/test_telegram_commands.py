"""Parsing what people type: each command becomes an intent or a usage that says why not."""

from __future__ import annotations

import pytest

from vsm.telegram_gateway.commands import (
    MAX_QUESTION,
    MENU,
    PolicyLookup,
    Question,
    Signal,
    Spawn,
    Usage,
    help_text,
    parse_policy,
    parse_question,
    parse_signal,
    parse_spawn,
)


def test_spawn_takes_exactly_one_type_name() -> None:
    assert parse_spawn(["worker"]) == Spawn("worker")
    assert isinstance(parse_spawn([]), Usage)
    assert isinstance(parse_spawn(["worker", "extra"]), Usage)
    bad = parse_spawn(["Worker!"])
    assert isinstance(bad, Usage)
    assert "'Worker!'" in bad.text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pain", "0.7"], Signal("pain", 0.7)),
        (["PLEASURE", "1"], Signal("pleasure", 1.0)),
        (["pain", "0"], Signal("pain", 0.0)),
    ],
)
def test_signal_parses_kind_and_intensity(args: list[str], expected: Signal) -> None:
    assert parse_signal(args) == expected


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Usage: /signal"),
        (["joy", "0.5"], "Unknown signal 'joy'"),
        (["pain", "lots"], "'lots' is not a number"),
        (["pain", "1.5"], "between 0 and 1"),
        (["pain", "nan"], "between 0 and 1"),
        (["pain", "-0.1"], "between 0 and 1"),
    ],
)
def test_signal_refuses_bad_words_with_the_reason(args: list[str], says: str) -> None:
    refused = parse_signal(args)
    assert isinstance(refused, Usage)
    assert says in refused.text


def test_policy_takes_nothing_or_a_known_type() -> None:
    assert parse_policy([]) == PolicyLookup(None)
    assert parse_policy(["throttle"]) == PolicyLookup("throttle")
    refused = parse_policy(["nonsense"])
    assert isinstance(refused, Usage)
    assert "governance" in refused.text


def test_question_is_stripped_and_bounded() -> None:
    assert parse_question("  hi  ") == Question("hi")
    assert isinstance(parse_question("   "), Usage)
    assert isinstance(parse_question("x" * (MAX_QUESTION + 1)), Usage)


def test_help_names_every_command_of_the_menu() -> None:
    text = help_text()
    assert all(f"/{name} — " in text for name in MENU)
    assert set(MENU) == {
        "start",
        "help",
        "status",
        "viability",
        "agents",
        "spawn",
        "signal",
        "policy",
        "ask",
    }
