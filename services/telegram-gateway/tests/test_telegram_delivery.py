"""Splitting long replies for Telegram's 4096-character limit, and reading its 429s."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from telegram.error import RetryAfter

from vsm.telegram_gateway.delivery import MAX_MESSAGE, retry_delay, split_message


def test_short_text_is_one_message() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("x" * MAX_MESSAGE) == ["x" * MAX_MESSAGE]


def test_long_text_is_cut_at_line_breaks_and_loses_nothing_else() -> None:
    lines = [f"line {n:04d} " + "y" * 50 for n in range(300)]
    pieces = split_message("\n".join(lines))
    assert len(pieces) > 1
    assert all(len(piece) <= MAX_MESSAGE for piece in pieces)
    assert "\n".join(pieces) == "\n".join(lines)
    assert all(piece.startswith("line ") for piece in pieces)


def test_text_without_spaces_is_cut_hard() -> None:
    pieces = split_message("z" * 10_000)
    assert [len(p) for p in pieces] == [4096, 4096, 1808]


def test_words_are_not_cut_in_half() -> None:
    text = " ".join(["word"] * 3000)
    pieces = split_message(text, limit=100)
    assert all(len(p) <= 100 for p in pieces)
    assert all(set(p.split(" ")) == {"word"} for p in pieces)


def test_retry_delay_reads_both_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    assert retry_delay(RetryAfter(timedelta(seconds=3))) == 3.0
    monkeypatch.delenv("PTB_TIMEDELTA")
    with warnings.catch_warnings():  # PTB 22 warns about the int form it still returns
        warnings.simplefilter("ignore")
        legacy = RetryAfter(2)
    assert retry_delay(legacy) == 2.0
