"""A hand-written recursive-descent parser for the rule language (see docs/rules.md).

Nothing here evaluates text: a rule becomes a tree of plain data, type-checked as it is
built (a condition where one is needed, numbers where arithmetic is done, text compared
only with an event's fields inside `where`), and refused with the line and column of the
first problem. Bounds are checked here too: window and `for` lengths, terms and aggregates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from vsm.contract.rules import syntax as s
from vsm.contract.rules.lexer import RuleError, Token, tokens

__all__ = [
    "COMPARE",
    "FUNCTIONS",
    "PERCENTILE",
    "SEVERITIES",
    "Limits",
    "Parser",
    "Vocabulary",
    "any_reading",
    "as_field",
    "closed",
    "describe",
    "function",
    "is_condition",
    "kind_of",
]

Vocabulary = Callable[[str], str | None]
"""A reading's name -> why it is unknown, or None when it may be read."""
PERCENTILE = re.compile(r"p([1-9][0-9]?)")
FUNCTIONS = ("count", "rate", "avg", "min", "max", "sum", "delta", "deriv")
COMPARE = ("==", "!=", ">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "critical")


def any_reading(name: str) -> str | None:
    """The vocabulary of a source whose readings are not known in advance."""
    return None


def closed(names: frozenset[str], source: str) -> Vocabulary:
    """A source that reads exactly `names`."""
    listing = ", ".join(sorted(names))

    def problem(name: str) -> str | None:
        return None if name in names else f"{source} reads no {name!r} (it reads {listing})"

    return problem


@dataclass(frozen=True)
class Limits:
    """The cost of a rule, bounded: refused when it asks for more."""

    max_window_s: float = 3600.0
    """The longest sliding window, and the longest `for`."""
    min_window_s: float = 1.0
    """The shortest sliding window (a `for` may be shorter)."""
    max_windows: int = 8
    """Aggregates in one rule (each keeps at most `buckets` buckets per group)."""
    max_terms: int = 64
    max_text: int = 2048
    max_groups: int = 100
    """Groups of a `by` rule kept at once; the least recently seen is evicted beyond."""
    max_samples: int = 1024
    """Values a percentile keeps per window and group (the most recent)."""
    buckets: int = 60
    """A window moves in steps of 1/`buckets` of its length."""


@dataclass
class Parser:
    text: str
    limits: Limits
    vocabulary: Vocabulary
    position: int = 0
    terms: int = 0
    in_where: bool = False
    in_window: bool = False

    def __post_init__(self) -> None:
        if len(self.text) > self.limits.max_text:
            raise RuleError(f"the rule is longer than {self.limits.max_text} characters")
        self.tokens = tokens(self.text)
        self.windows: list[s.Window] = []
        self.readings: dict[str, None] = {}

    # Tokens ---------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.token
        if token.kind != "end":
            self.position += 1
        return token

    def at(self, *texts: str) -> bool:
        return self.token.kind in ("keyword", "symbol") and self.token.text in texts

    def expect(self, text: str, what: str = "") -> Token:
        if not self.at(text):
            raise self.token.fail(f"expected {what or repr(text)}, found {describe(self.token)}")
        return self.advance()

    def since(self, start: Token) -> str:
        last = self.tokens[self.position - 1]
        return self.text[start.start : last.start + len(last.text)]

    def count_term(self) -> None:
        self.terms += 1
        if self.terms > self.limits.max_terms:
            raise self.token.fail(f"the rule has more than {self.limits.max_terms} terms")

    # Conditions -----------------------------------------------------------------------
    def condition(self) -> s.Condition:
        start = self.token
        found = self.disjunction()
        if not is_condition(found):
            raise start.fail(
                f"a condition is needed here, such as `{found.text} > 0`; "
                f"`{found.text}` is {kind_of(found)}"
            )
        return cast(s.Condition, found)

    def disjunction(self) -> s.Condition | s.Expression:
        return self.logical("or", self.conjunction)

    def conjunction(self) -> s.Condition | s.Expression:
        return self.logical("and", self.negation)

    def logical(
        self, op: str, operand: Callable[[], s.Condition | s.Expression]
    ) -> s.Condition | s.Expression:
        start = self.token
        first = operand()
        if not self.at(op):
            return first
        operands = [self.boolean(first, start, op)]
        while self.at(op):
            self.advance()
            here = self.token
            operands.append(self.boolean(operand(), here, op))
        self.count_term()
        return s.Logical(op, tuple(operands), self.since(start))  # type: ignore[arg-type]

    def boolean(self, node: s.Condition | s.Expression, where: Token, op: str) -> s.Condition:
        if not is_condition(node):
            raise where.fail(f"`{op}` joins conditions; `{node.text}` is {kind_of(node)}")
        return cast(s.Condition, node)

    def negation(self) -> s.Condition | s.Expression:
        if not self.at("not"):
            return self.comparison()
        start = self.advance()
        here = self.token
        operand = self.boolean(self.negation(), here, "not")
        self.count_term()
        return s.Not(operand, self.since(start))

    def comparison(self) -> s.Condition | s.Expression:
        start = self.token
        left = self.sum()
        if not self.at(*COMPARE):
            return left
        op = self.advance()
        right = self.sum()
        self.count_term()
        left, right = self.compared(left, right, op)
        return s.Comparison(op.text, left, right, self.since(start))  # type: ignore[arg-type]

    def compared(
        self, left: s.Condition | s.Expression, right: s.Condition | s.Expression, op: Token
    ) -> tuple[s.Expression, s.Expression]:
        if is_condition(left) or is_condition(right):
            raise op.fail("a comparison compares values, not conditions (use `and`, `or`)")
        left, right = cast(s.Expression, left), cast(s.Expression, right)
        if not (isinstance(left, s.Text) or isinstance(right, s.Text)):
            return left, right
        if not self.in_where:
            raise op.fail("text is compared only with an event's field, inside `where`")
        if op.text not in ("==", "!="):
            raise op.fail(f"text is compared with `==` or `!=`, not `{op.text}`")
        return as_field(left, op), as_field(right, op)

    # Arithmetic -----------------------------------------------------------------------
    def sum(self) -> s.Condition | s.Expression:
        return self.arithmetic(("+", "-"), self.product)

    def product(self) -> s.Condition | s.Expression:
        return self.arithmetic(("*", "/"), self.unary)

    def arithmetic(
        self, ops: tuple[str, ...], operand: Callable[[], s.Condition | s.Expression]
    ) -> s.Condition | s.Expression:
        start = self.token
        left = operand()
        while self.at(*ops):
            op = self.advance()
            right = operand()
            for side in (left, right):
                if is_condition(side) or isinstance(side, s.Text):
                    raise op.fail(f"`{op.text}` needs numbers; `{side.text}` is {kind_of(side)}")
            self.count_term()
            left = s.Binary(
                op.text,  # type: ignore[arg-type]
                cast(s.Expression, left),
                cast(s.Expression, right),
                self.since(start),
            )
        return left

    def unary(self) -> s.Condition | s.Expression:
        if not self.at("-"):
            return self.atom()
        start = self.advance()
        operand = self.unary()
        if is_condition(operand) or isinstance(operand, s.Text):
            raise start.fail(f"`-` needs a number; `{operand.text}` is {kind_of(operand)}")
        self.count_term()
        return s.Negative(cast(s.Expression, operand), self.since(start))

    def atom(self) -> s.Condition | s.Expression:
        token = self.token
        if self.at("("):
            self.advance()
            inner = self.disjunction()
            self.expect(")", "`)`")
            return inner
        self.count_term()
        if token.kind == "number":
            self.advance()
            return s.Number(float(token.value), token.text)
        if token.kind == "text":
            self.advance()
            return s.Text(str(token.value), token.text)
        if token.kind == "name":
            self.advance()
            if self.at("("):
                return self.window(token)
            return self.reading(token)
        raise token.fail(f"expected a value, a reading or an aggregate, found {describe(token)}")

    def reading(self, token: Token) -> s.Reading:
        name = str(token.value)
        if self.in_where:  # an event's reading, or its field if compared with text
            return s.Reading(name, token.text)
        if (problem := self.vocabulary(name)) is not None:
            raise token.fail(f"unknown reading: {problem}")
        self.readings[name] = None
        return s.Reading(name, token.text)

    # Aggregates -----------------------------------------------------------------------
    def window(self, name: Token) -> s.Window:
        fn, quantile = function(name)
        if self.in_window or self.in_where:
            raise name.fail(f"`{name.text}(...)` cannot be used inside another aggregate")
        if len(self.windows) >= self.limits.max_windows:
            raise name.fail(f"a rule has at most {self.limits.max_windows} aggregates")
        self.expect("(")
        argument = self.argument(fn)
        where = self.where_clause()
        self.expect(")", "`)` or `where`")
        self.expect("over", f"`over <window>` after `{name.text}(...)`")
        window_s = self.duration("window")
        node = s.Window(
            fn, argument, where, window_s, self.since(name), quantile, len(self.windows)
        )
        self.windows.append(node)
        return node

    def argument(self, fn: s.Aggregate) -> str:
        token = self.token
        if fn in s.COUNTING:
            if self.at("*") or token.kind in ("name", "text"):
                self.advance()
                return "*" if token.text == "*" else str(token.value)
            raise token.fail(f"`{fn}` counts events: name them, or `*` for all")
        if token.kind != "name":
            raise token.fail(f"`{fn}` aggregates a reading: name it, found {describe(token)}")
        if (problem := self.vocabulary(str(token.value))) is not None:
            raise token.fail(f"unknown reading: {problem}")
        self.advance()
        return str(token.value)

    def where_clause(self) -> s.Condition | None:
        if not self.at("where"):
            return None
        self.advance()
        self.in_where = True
        try:
            return self.condition()
        finally:
            self.in_where = False

    def duration(self, what: str) -> float:
        token = self.token
        if token.kind != "duration":
            raise token.fail(f"expected a {what} such as `30s` or `5m`, found {describe(token)}")
        self.advance()
        seconds = float(token.value)
        if seconds > self.limits.max_window_s:
            raise token.fail(
                f"a {what} of {token.text} is longer than the maximum "
                f"({self.limits.max_window_s:g} s): windows are bounded"
            )
        if what == "window" and seconds < self.limits.min_window_s:
            raise token.fail(
                f"a {what} of {token.text} is shorter than {self.limits.min_window_s:g} s"
            )
        return seconds


def function(name: Token) -> tuple[s.Aggregate, float]:
    text = str(name.value)
    if (percentile := PERCENTILE.fullmatch(text)) is not None:
        return "percentile", int(percentile.group(1)) / 100
    if text in FUNCTIONS:
        return cast(s.Aggregate, text), 0.0
    raise name.fail(f"unknown aggregate {text!r} (known: {', '.join(FUNCTIONS)} and p1..p99)")


def is_condition(node: s.Condition | s.Expression) -> bool:
    return isinstance(node, s.Comparison | s.Not | s.Logical)


def kind_of(node: s.Condition | s.Expression) -> str:
    if is_condition(node):
        return "a condition"
    return "text" if isinstance(node, s.Text | s.Field) else "a number"


def as_field(node: s.Expression, op: Token) -> s.Expression:
    if isinstance(node, s.Text):
        return node
    if isinstance(node, s.Reading):
        return s.Field(node.name, node.text)
    raise op.fail(f"text is compared with an event's field, not with `{node.text}`")


def describe(token: Token) -> str:
    return "the end of the rule" if token.kind == "end" else f"`{token.text}`"
