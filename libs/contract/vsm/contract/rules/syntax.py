"""A parsed rule as plain, immutable data: the tree the evaluator walks.

Every node keeps `text`, the part of the rule it was written as, so a firing can say which
reading or aggregate had which value (`{"p95(latency) over 5m": 812.0}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COUNTING",
    "OUTCOMES",
    "Aggregate",
    "Arithmetic",
    "Binary",
    "Compare",
    "Comparison",
    "Condition",
    "Expression",
    "Field",
    "Logical",
    "Negative",
    "Not",
    "Number",
    "Outcome",
    "OutcomeKind",
    "Reading",
    "Rule",
    "Severity",
    "Text",
    "Window",
]

Compare = Literal["==", "!=", ">", ">=", "<", "<="]
Arithmetic = Literal["+", "-", "*", "/"]
Aggregate = Literal["count", "rate", "avg", "min", "max", "sum", "delta", "deriv", "percentile"]
COUNTING: frozenset[Aggregate] = frozenset({"count", "rate"})
"""Aggregates over events (how many matched), the others are over a reading's values."""


@dataclass(frozen=True)
class Number:
    value: float
    text: str


@dataclass(frozen=True)
class Text:
    value: str
    text: str


@dataclass(frozen=True)
class Reading:
    """A named reading: its latest value (in a `where` clause, the event's own value)."""

    name: str
    text: str


@dataclass(frozen=True)
class Field:
    """A field of an event (its `source`, `status`, ...): text, compared only in `where`."""

    name: str
    text: str


@dataclass(frozen=True)
class Negative:
    operand: Expression
    text: str


@dataclass(frozen=True)
class Binary:
    op: Arithmetic
    left: Expression
    right: Expression
    text: str


@dataclass(frozen=True)
class Window:
    """`fn(argument [where predicate]) over <window_s>`: an aggregate over a sliding window.

    For `count` and `rate` the argument selects events by name (`*` for all, a `*` glob in
    quotes); for the others it names the reading whose values are aggregated."""

    fn: Aggregate
    argument: str
    where: Condition | None
    window_s: float
    text: str
    quantile: float = 0.0
    """For `percentile` (written `p95`): 0.95."""
    index: int = 0
    """The aggregate's place in its rule (state is kept per aggregate)."""


Expression = Number | Text | Reading | Field | Negative | Binary | Window


@dataclass(frozen=True)
class Comparison:
    op: Compare
    left: Expression
    right: Expression
    text: str


@dataclass(frozen=True)
class Not:
    operand: Condition
    text: str


@dataclass(frozen=True)
class Logical:
    op: Literal["and", "or"]
    operands: tuple[Condition, ...]
    text: str


Condition = Comparison | Not | Logical


OutcomeKind = Literal["pain", "pleasure", "observe", "alert"]
OUTCOMES: tuple[OutcomeKind, ...] = ("pain", "pleasure", "observe", "alert")
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Outcome:
    """What a rule does when it fires: a signal, an S4 observation, or an alert."""

    kind: OutcomeKind
    intensity: float = 0.0
    severity: Severity = "warning"


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Condition
    outcome: Outcome
    sustained_s: float = 0.0
    """`for <duration>`: the condition must hold this long before the rule fires."""
    group_by: str | None = None
    windows: tuple[Window, ...] = ()
    readings: tuple[str, ...] = ()
    """Every reading named outside a `where` clause (their latest values are kept)."""
    text: str = ""
