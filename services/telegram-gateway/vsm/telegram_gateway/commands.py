"""What people may say to the bot: the command menu and the parsing of each command's words.

Parsing is pure: a command either becomes an intent (`Spawn`, `Signal`, ...) or a `Usage`
that tells the person exactly what was wrong, and nothing reaches the system.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from vsm.contract.policy import POLICY_TYPES

MENU: dict[str, str] = {
    "start": "Say hello and show what I can do",
    "help": "Every command and what it does",
    "status": "State of every system and gateway (S5's view)",
    "viability": "Viability score and its measured terms",
    "agents": "The running S1 agents",
    "spawn": "Spawn an S1 agent: /spawn <type>",
    "signal": "Raise pain or pleasure: /signal <pain|pleasure> <0..1>",
    "policy": "Latest policies, or one: /policy [type]",
    "ask": "Ask the assistant (read-only): /ask <question>",
}
"""Registered with Telegram (setMyCommands) so clients show the menu."""

AGENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_QUESTION = 16_000


@dataclass(frozen=True)
class Usage:
    """The words did not make a command; `text` says why and how to write it."""

    text: str


@dataclass(frozen=True)
class Spawn:
    agent_type: str


@dataclass(frozen=True)
class Signal:
    kind: Literal["pain", "pleasure"]
    intensity: float


@dataclass(frozen=True)
class PolicyLookup:
    policy_type: str | None


@dataclass(frozen=True)
class Question:
    text: str


def parse_spawn(args: list[str]) -> Spawn | Usage:
    if len(args) != 1:
        return Usage("Usage: /spawn <type>, e.g. /spawn worker (see /agents for types in use).")
    if not AGENT_TYPE.match(args[0]):
        return Usage(f"{args[0]!r} is not an agent type name (lower case letters, digits, _).")
    return Spawn(args[0])


def parse_signal(args: list[str]) -> Signal | Usage:
    usage = "Usage: /signal <pain|pleasure> <intensity 0..1>, e.g. /signal pain 0.7"
    if len(args) != 2:
        return Usage(usage)
    kind = args[0].lower()
    if kind not in ("pain", "pleasure"):
        return Usage(f"Unknown signal {args[0]!r}: use pain or pleasure. {usage}")
    try:
        intensity = float(args[1])
    except ValueError:
        return Usage(f"Intensity {args[1]!r} is not a number. {usage}")
    if not math.isfinite(intensity) or not 0.0 <= intensity <= 1.0:
        return Usage(f"Intensity must be between 0 and 1, not {args[1]}. {usage}")
    return Signal("pain" if kind == "pain" else "pleasure", intensity)


def parse_policy(args: list[str]) -> PolicyLookup | Usage:
    if not args:
        return PolicyLookup(None)
    if len(args) == 1 and args[0] in POLICY_TYPES:
        return PolicyLookup(args[0])
    return Usage(f"Usage: /policy [type], where type is one of: {', '.join(POLICY_TYPES)}.")


def parse_question(text: str) -> Question | Usage:
    question = text.strip()
    if not question:
        return Usage("Usage: /ask <question>, or just write to me.")
    if len(question) > MAX_QUESTION:
        return Usage(f"That is too long for me: at most {MAX_QUESTION} characters, please.")
    return Question(question)


def help_text() -> str:
    lines = ["I am the vsm bot: I show the viable system's state and pass on what you ask."]
    lines += [f"/{name} — {what}" for name, what in MENU.items()]
    lines.append("Anything else you write goes to the assistant, which can only read.")
    return "\n".join(lines)
