"""The rule language's tokens, each with the line and column (1-based) where it starts.

Names are letters, digits, `_` and dots (`queue.depth`, `queue.0.depth`); any other name
is written between backticks (`` `operations/sensor-1.load1` ``). Text is in double or single
quotes. A number may carry `%` (80% is 0.8); a duration is a number and a unit (`500ms`,
`30s`, `5m`, `1h`). `#` starts a comment to the end of its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "KEYWORDS",
    "SYMBOLS",
    "TOKEN",
    "UNITS",
    "Kind",
    "RuleError",
    "Token",
    "end_after",
    "tokens",
]

Kind = Literal["number", "duration", "name", "text", "keyword", "symbol", "end"]

KEYWORDS = frozenset({"and", "or", "not", "for", "by", "over", "where", "then"})
UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
SYMBOLS = ("==", "!=", ">=", "<=", ">", "<", "(", ")", "+", "-", "*", "/", ",")

TOKEN = re.compile(
    r"(?P<space>[ \t\r]+|\#[^\n]*)"
    r"|(?P<newline>\n)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<suffix>ms|s|m|h|%)?(?![A-Za-z_0-9])"
    r"|(?P<malformed>\d[A-Za-z0-9_.%]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)"
    r"|`(?P<quoted>[^`\n]{1,256})`"
    r"|\"(?P<dq>[^\"\n]{0,256})\"|'(?P<sq>[^'\n]{0,256})'"
    r"|(?P<symbol>==|!=|>=|<=|[><()+\-*/,])"
)


class RuleError(ValueError):
    """A rule that cannot be accepted, with where (line, column; 1-based) it went wrong."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column
        self.field = "when"
        """Which text of the rule it is in: `when` or `then`."""


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    value: float | str
    line: int
    column: int
    start: int
    """Offset in the rule's text, so a node can quote what it was written as."""

    def fail(self, message: str) -> RuleError:
        return RuleError(message, self.line, self.column)


def tokens(text: str) -> list[Token]:
    """Every token of `text`, ending with an `end` token; `RuleError` at the first bad one."""
    found: list[Token] = []
    line, line_start, at = 1, 0, 0
    while at < len(text):
        match = TOKEN.match(text, at)
        column = at - line_start + 1
        if match is None:
            raise RuleError(f"unexpected character {text[at]!r}", line, column)
        kind = match.lastgroup
        if kind == "malformed":
            raise RuleError(
                f"malformed number {match.group(0)!r}: a duration is a number and ms, s, m or h",
                line,
                column,
            )
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind != "space":
            found.append(_token(match, line, column, at))
        at = match.end()
    found.append(end_after(found[-1] if found else None, len(text)))
    return found


def end_after(last: Token | None, length: int) -> Token:
    """The end of the rule, placed right after its last token (where something is missing)."""
    if last is None:
        return Token("end", "", "", 1, 1, length)
    return Token("end", "", "", last.line, last.column + len(last.text), length)


def _token(match: re.Match[str], line: int, column: int, at: int) -> Token:
    text = match.group(0)
    kind: Kind = "symbol"
    value: float | str = text
    if match.group("number") is not None:
        kind, value = "number", float(match.group("number"))
        if (suffix := match.group("suffix")) == "%":
            value /= 100
        elif suffix:
            kind, value = "duration", value * UNITS[suffix]
    elif (name := match.group("name")) is not None:
        kind, value = ("keyword" if name in KEYWORDS else "name"), name
    elif (quoted := match.group("quoted")) is not None:
        kind, value = "name", quoted
    elif (said := match.group("dq") or match.group("sq")) is not None or text[0] in "\"'":
        kind, value = "text", said or ""
    return Token(kind, text, value, line, column, at)
