"""The rule language's grammar: what parses into what, and every refusal with its line and
column (1-based, inside the rule's own text)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vsm.contract.rules import (
    Limits,
    RuleDeclaration,
    RuleError,
    closed,
    compile_rule,
    compile_rules,
    parse_then,
)
from vsm.contract.rules import syntax as s


def rule(when: str, then: str = "pain 0.5", **options: object) -> s.Rule:
    return compile_rule(RuleDeclaration(name="r", when=when, then=then), **options)  # type: ignore[arg-type]


def refused(when: str, then: str = "pain 0.5", **options: object) -> RuleError:
    with pytest.raises(RuleError) as error:
        rule(when, then, **options)
    return error.value


def test_a_comparison_of_a_reading_with_a_number() -> None:
    parsed = rule("cpu > 0.8")
    assert parsed.condition == s.Comparison(
        ">", s.Reading("cpu", "cpu"), s.Number(0.8, "0.8"), "cpu > 0.8"
    )
    assert parsed.readings == ("cpu",)
    assert parsed.sustained_s == 0
    assert parsed.group_by is None


@pytest.mark.parametrize("op", ["==", "!=", ">", ">=", "<", "<="])
def test_every_comparison_operator(op: str) -> None:
    condition = rule(f"a {op} 1").condition
    assert isinstance(condition, s.Comparison)
    assert condition.op == op


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    condition = rule("a > 1 or not b > 2 and c > 3").condition
    assert isinstance(condition, s.Logical)
    assert condition.op == "or"
    left, right = condition.operands
    assert left.text == "a > 1"
    assert isinstance(right, s.Logical)
    assert right.op == "and"
    assert isinstance(right.operands[0], s.Not)
    assert right.operands[0].text == "not b > 2"


def test_parentheses_group_conditions_and_arithmetic() -> None:
    condition = rule("(a > 1 or b > 1) and (c + d) * 2 > 10").condition
    assert isinstance(condition, s.Logical)
    assert condition.op == "and"
    assert condition.operands[0].text == "(a > 1 or b > 1)"[1:-1]
    product = condition.operands[1]
    assert isinstance(product, s.Comparison)
    assert isinstance(product.left, s.Binary)
    assert product.left.op == "*"


def test_percent_duration_units_and_negative_numbers() -> None:
    assert rule("cpu > 80%").condition.right == s.Number(0.8, "80%")  # type: ignore[union-attr]
    assert rule("a > 1 for 500ms").sustained_s == 0.5
    assert rule("a > 1 for 2m").sustained_s == 120
    assert rule("a > 1 for 1h").sustained_s == 3600
    negative = rule("delta(t) over 1m < -5").condition.right  # type: ignore[union-attr]
    assert isinstance(negative, s.Negative)


def test_aggregates_over_windows() -> None:
    parsed = rule(
        "count(error) over 5m / count(*) over 5m > 0.05 and p95(latency) over 1m > 500 "
        "and rate('http.*') over 30s > 2 and avg(x) over 1m + max(x) over 1m > min(x) over 1m"
    )
    kinds = [(w.fn, w.argument, w.window_s, w.index) for w in parsed.windows]
    assert kinds == [
        ("count", "error", 300, 0),
        ("count", "*", 300, 1),
        ("percentile", "latency", 60, 2),
        ("rate", "http.*", 30, 3),
        ("avg", "x", 60, 4),
        ("max", "x", 60, 5),
        ("min", "x", 60, 6),
    ]
    assert parsed.windows[2].quantile == 0.95
    assert parsed.windows[2].text == "p95(latency) over 1m"


def test_where_filters_an_aggregate_on_the_events_own_fields_and_readings() -> None:
    parsed = rule("count(request where status == 'error' and ms > 100) over 1m > 3")
    where = parsed.windows[0].where
    assert isinstance(where, s.Logical)
    status, ms = where.operands
    assert status == s.Comparison(
        "==", s.Field("status", "status"), s.Text("error", "'error'"), "status == 'error'"
    )
    assert isinstance(ms, s.Comparison)
    assert ms.left == s.Reading("ms", "ms")
    assert parsed.readings == ()  # a where clause reads the event, not the latest values


def test_for_and_by_in_either_order_and_backquoted_names() -> None:
    one = rule("`operations/sensor-1.load1` > 4 for 30s by source")
    other = rule("`operations/sensor-1.load1` > 4 by source for 30s")
    assert one.readings == other.readings == ("operations/sensor-1.load1",)
    assert (one.sustained_s, one.group_by) == (other.sustained_s, other.group_by) == (30, "source")


def test_comments_and_lines() -> None:
    parsed = rule("# hot and full\ncpu > 0.8   # cpu\n  and memory > 0.9\nfor 30s")
    assert parsed.readings == ("cpu", "memory")
    assert parsed.sustained_s == 30


@pytest.mark.parametrize(
    ("then", "outcome"),
    [
        ("pain 0.7", s.Outcome("pain", intensity=0.7)),
        ("pleasure 30%", s.Outcome("pleasure", intensity=0.3)),
        ("observe", s.Outcome("observe")),
        ("alert critical", s.Outcome("alert", severity="critical")),
    ],
)
def test_outcomes(then: str, outcome: s.Outcome) -> None:
    assert parse_then(then) == outcome


@pytest.mark.parametrize(
    ("when", "line", "column", "says"),
    [
        ("cpu >", 1, 6, "expected a value"),
        ("cpu > 0.8 and", 1, 14, "expected a value"),
        ("cpu", 1, 1, "a condition is needed"),
        ("cpu > 0.8 memory", 1, 11, "expected `and`, `or`, `for`, `by`"),
        ("cpu > 1\n  and (mem > 2", 2, 15, "expected `)`"),
        ("cpu > 0.8 for 5x", 1, 15, "malformed number '5x'"),
        ("cpu > 0.8 for", 1, 14, "expected a duration"),
        ("cpu > 0.8 for 3", 1, 15, "expected a duration"),
        ("cpu > 'hot'", 1, 5, "text is compared only with an event's field"),
        ("count(x where s > 'a') over 1m > 1", 1, 17, "text is compared with `==` or `!=`"),
        ("a > 1 and 2", 1, 11, "`and` joins conditions"),
        ("not cpu", 1, 5, "`not` joins conditions"),
        ("(a > 1) + 1 > 2", 1, 9, "`+` needs numbers"),
        ("a > 1 > 2", 1, 7, "expected `and`, `or`"),
        ("(a > 1) > 2", 1, 9, "compares values, not conditions"),
        ("foo(x) over 1m > 2", 1, 1, "unknown aggregate 'foo'"),
        ("count(x) > 1", 1, 10, "expected `over <window>`"),
        ("avg(*) over 1m > 1", 1, 5, "`avg` aggregates a reading"),
        ("count(1) over 1m > 1", 1, 7, "`count` counts events"),
        ("count(x where avg(y) over 1m > 1) over 1m > 1", 1, 15, "inside another aggregate"),
        ("a > 1 for 1s for 2s", 1, 14, "`for` is given twice"),
        ("a > 1 by 3", 1, 10, "the field to group by"),
        ("a > 1 @", 1, 7, "unexpected character '@'"),
        ("a >\n\n   $", 3, 4, "unexpected character '$'"),
    ],
)
def test_a_malformed_rule_is_refused_with_its_line_and_column(
    when: str, line: int, column: int, says: str
) -> None:
    error = refused(when)
    assert (error.line, error.column, error.field) == (line, column, "when"), str(error)
    assert says in error.message
    assert str(error).startswith(f"line {line}, column {column}: ")


@pytest.mark.parametrize(
    ("then", "column", "says"),
    [
        ("hurt 0.5", 1, "expected `pain`, `pleasure`, `observe` or `alert`"),
        ("pain", 5, "an intensity from 0 to 1"),
        ("pain 1.5", 6, "an intensity from 0 to 1"),
        ("alert loud", 7, "a severity"),
        ("observe now", 9, "the end of the outcome"),
    ],
)
def test_a_malformed_outcome_is_refused_with_its_column(then: str, column: int, says: str) -> None:
    error = refused("a > 1", then)
    assert (error.field, error.line, error.column) == ("then", 1, column)
    assert says in error.message


def test_unbounded_windows_and_oversized_rules_are_refused() -> None:
    assert "longer than the maximum (3600 s)" in refused("count(x) over 2h > 1").message
    assert refused("a > 1 for 61m").column == 11
    tight = Limits(max_window_s=60)
    assert "windows are bounded" in refused("avg(x) over 2m > 1", limits=tight).message
    assert "shorter than 1 s" in refused("count(x) over 100ms > 1").message
    many = " and ".join(f"count(e{i}) over 1m > 0" for i in range(9))
    assert "at most 8 aggregates" in refused(many).message
    long = " and ".join(f"a{i} > 0" for i in range(40))
    assert "more than 64 terms" in refused(long).message
    assert (
        "longer than 100 characters"
        in refused("a > 1" + " " * 100, limits=Limits(max_text=100)).message
    )


def test_a_closed_vocabulary_refuses_unknown_readings_where_they_are_named() -> None:
    host = closed(frozenset({"load1", "memory_used_fraction"}), "a host sensor")
    assert rule("load1 > 4", vocabulary=host).readings == ("load1",)
    error = refused("load1 > 4 and cpu > 0.8", vocabulary=host)
    assert (error.line, error.column) == (1, 15)
    assert "unknown reading: a host sensor reads no 'cpu'" in error.message
    assert "load1, memory_used_fraction" in error.message
    assert refused("p95(lod1) over 1m > 2", vocabulary=host).column == 5


def test_an_outcome_a_place_does_not_offer_is_refused() -> None:
    error = refused("a > 1", "alert warning", outcomes=frozenset({"pain", "pleasure"}))
    assert error.field == "then"
    assert "here a rule can only pain or pleasure" in error.message


def test_compile_rules_names_each_refused_field_like_pydantic() -> None:
    declared = [
        RuleDeclaration(name="ok", when="a > 1", then="pain 0.5"),
        RuleDeclaration(name="bad-when", when="a >\n  and b", then="pain 0.5"),
        RuleDeclaration(name="bad-then", when="a > 1", then="pain 2"),
        RuleDeclaration(name="ok", when="b > 1", then="pain 0.5"),
    ]
    with pytest.raises(ValidationError) as refusal:
        compile_rules(declared, at=("config", "rules"))
    problems = [(e["loc"], e["msg"], e.get("ctx", {})) for e in refusal.value.errors()]
    assert [p[0] for p in problems] == [
        ("config", "rules", 1, "when"),
        ("config", "rules", 2, "then"),
        ("config", "rules", 3, "name"),
    ]
    assert problems[0][1].startswith("line 2, column 3: expected a value")
    assert (problems[0][2]["line"], problems[0][2]["column"]) == (2, 3)
    assert "declared twice" in problems[2][1]
