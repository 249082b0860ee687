"""Rules evaluated incrementally over facts as they arrive, in bounded memory.

A fact is one event: its name, its numeric readings and its text fields. Each rule keeps,
per group (one, or one per value of its `by` field: at most `max_groups`, the least
recently seen evicted), the latest value of the readings it names and one sliding window
per aggregate. Logic is three-valued: a reading never seen, an empty window or a division
by zero is unknown, and a rule fires only when its condition is known to hold.

A counting aggregate (`count`, `rate`) is unknown until its group has been watched for the
whole window, so `count(heartbeat) over 2m == 0` means two minutes of silence, not "just
started". A rule fires once when its condition has held for its `for` duration (at once
without one) and again only after the condition has stopped holding.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vsm.contract.rules import syntax as s
from vsm.contract.rules.parser import Limits
from vsm.contract.rules.windows import SlidingWindow

__all__ = [
    "Fact",
    "Firing",
    "Group",
    "RuleBook",
    "RuleState",
    "Value",
    "arithmetic",
    "compare",
    "evidence",
    "judge",
    "number",
    "reading",
    "sample_of",
    "truth",
    "value_of",
    "window_value",
]

Value = float | str | None


@dataclass(frozen=True)
class Fact:
    at: float
    event: str
    readings: Mapping[str, float] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    rule: s.Rule
    group: str
    at: float
    evidence: dict[str, float | None]
    """The value of every reading and aggregate the rule names, when it fired."""


@dataclass
class Group:
    started: float
    windows: list[SlidingWindow]
    latest: dict[str, float] = field(default_factory=dict)
    since: float | None = None
    fired: bool = False


@dataclass
class RuleState:
    rule: s.Rule
    groups: OrderedDict[str, Group] = field(default_factory=OrderedDict)
    evicted: int = 0


class RuleBook:
    """A set of rules and what they remember; pure: time comes in with each call."""

    def __init__(self, rules: Sequence[s.Rule], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.states = [RuleState(rule) for rule in rules]

    @property
    def rules(self) -> list[s.Rule]:
        return [state.rule for state in self.states]

    def observe(self, fact: Fact) -> list[Firing]:
        """Take in one fact; the rules it made fire."""
        fired = []
        for state in self.states:
            rule = state.rule
            key = fact.fields.get(rule.group_by) if rule.group_by else ""
            if key is None:
                continue
            group = self.group(state, key, fact.at)
            for name in rule.readings:
                if name in fact.readings:
                    group.latest[name] = fact.readings[name]
            for window, sliding in zip(rule.windows, group.windows, strict=True):
                if (sample := sample_of(window, fact)) is not None:
                    sliding.add(fact.at, sample)
            if (firing := judge(rule, key, group, fact.at)) is not None:
                fired.append(firing)
        return fired

    def tick(self, now: float) -> list[Firing]:
        """Judge every group at `now`: durations pass and windows empty without any fact."""
        fired = []
        for state in self.states:
            if state.rule.group_by is None and not state.groups:
                self.group(state, "", now)
            for key, group in state.groups.items():
                if (firing := judge(state.rule, key, group, now)) is not None:
                    fired.append(firing)
        return fired

    def group(self, state: RuleState, key: str, now: float) -> Group:
        found = state.groups.get(key)
        if found is not None:
            state.groups.move_to_end(key)
            return found
        if len(state.groups) >= self.limits.max_groups:
            state.groups.popitem(last=False)
            state.evicted += 1
        windows = [
            SlidingWindow(
                w.window_s,
                self.limits.buckets,
                self.limits.max_samples if w.fn == "percentile" else 0,
            )
            for w in state.rule.windows
        ]
        state.groups[key] = made = Group(started=now, windows=windows)
        return made

    def firing(self) -> list[str]:
        """The rules that have fired and still hold (in some group)."""
        return [s.rule.name for s in self.states if any(g.fired for g in s.groups.values())]

    def groups(self) -> int:
        return sum(len(state.groups) for state in self.states)


def sample_of(window: s.Window, fact: Fact) -> float | None:
    """What `fact` adds to `window`: 1 for a counted event, a reading's value, or None."""
    if window.fn in s.COUNTING:
        if window.argument != "*" and not fnmatch.fnmatchcase(fact.event, window.argument):
            return None
        value: float | None = 1.0
    else:
        value = fact.readings.get(window.argument)
    if value is None:
        return None
    if window.where is not None and truth(window.where, None, fact, fact.at) is not True:
        return None
    return value


def judge(rule: s.Rule, key: str, group: Group, now: float) -> Firing | None:
    if truth(rule.condition, group, None, now) is not True:
        group.since, group.fired = None, False
        return None
    if group.since is None:
        group.since = now
    if group.fired or now - group.since < rule.sustained_s:
        return None
    group.fired = True
    return Firing(rule, key, now, evidence(rule, group, now))


def evidence(rule: s.Rule, group: Group, now: float) -> dict[str, float | None]:
    seen: dict[str, float | None] = {name: group.latest.get(name) for name in rule.readings}
    for window in rule.windows:
        seen[window.text] = number(value_of(window, group, None, now))
    return seen


def truth(node: s.Condition, group: Group | None, fact: Fact | None, now: float) -> bool | None:
    """Kleene's three-valued logic: None is "unknown"."""
    if isinstance(node, s.Not):
        inner = truth(node.operand, group, fact, now)
        return None if inner is None else not inner
    if isinstance(node, s.Logical):
        values = [truth(o, group, fact, now) for o in node.operands]
        decisive = node.op == "or"
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    left, right = value_of(node.left, group, fact, now), value_of(node.right, group, fact, now)
    if left is None or right is None or isinstance(left, str) != isinstance(right, str):
        return None
    return compare(node.op, left, right)


def compare(op: s.Compare, left: float | str, right: float | str) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, str) or isinstance(right, str):
        return False
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def value_of(node: s.Expression, group: Group | None, fact: Fact | None, now: float) -> Value:
    if isinstance(node, s.Number | s.Text):
        return node.value
    if isinstance(node, s.Field):
        return fact.fields.get(node.name) if fact is not None else None
    if isinstance(node, s.Reading):
        return reading(node, group, fact)
    if isinstance(node, s.Negative):
        inner = number(value_of(node.operand, group, fact, now))
        return None if inner is None else -inner
    if isinstance(node, s.Binary):
        left = number(value_of(node.left, group, fact, now))
        return arithmetic(node.op, left, number(value_of(node.right, group, fact, now)))
    return window_value(node, group, now)


def reading(node: s.Reading, group: Group | None, fact: Fact | None) -> float | None:
    """In a `where` clause the event's own value, elsewhere the latest one seen."""
    if fact is not None:
        return fact.readings.get(node.name)
    return group.latest.get(node.name) if group is not None else None


def number(value: Value) -> float | None:
    return None if value is None or isinstance(value, str) else float(value)


def arithmetic(op: s.Arithmetic, left: float | None, right: float | None) -> float | None:
    if left is None or right is None:
        return None
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right if right != 0 else None


def window_value(node: s.Window, group: Group | None, now: float) -> float | None:
    if group is None:
        return None
    if node.fn in s.COUNTING and now - group.started < node.window_s:
        return None  # not watched for a whole window yet
    return group.windows[node.index].value(node.fn, now, node.quantile)
