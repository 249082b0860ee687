"""The rule language evaluated: each operator and aggregate, sustained conditions, windows,
grouping, and the bounds on what a rule remembers."""

from __future__ import annotations

import pytest

from vsm.contract.rules import Fact, Firing, Limits, RuleBook, RuleDeclaration, compile_rule


def book(when: str, limits: Limits | None = None) -> RuleBook:
    declared = RuleDeclaration(name="r", when=when, then="pain 0.5")
    return RuleBook([compile_rule(declared, limits)], limits)


def reading(at: float, **values: float) -> Fact:
    return Fact(at, "reading", {k: float(v) for k, v in values.items()})


def event(at: float, name: str, **fields: str) -> Fact:
    return Fact(at, name, {}, fields)


def fires(rules: RuleBook, *facts: Fact) -> list[float]:
    """The times at which the facts made the rules fire."""
    return [f.at for fact in facts for f in rules.observe(fact)]


@pytest.mark.parametrize(
    ("when", "value", "expected"),
    [
        ("x > 1", 2, True),
        ("x > 1", 1, False),
        ("x >= 1", 1, True),
        ("x < 1", 0, True),
        ("x <= 1", 2, False),
        ("x == 3", 3, True),
        ("x != 3", 3, False),
        ("x + 1 == 4", 3, True),
        ("x - 1 == 2", 3, True),
        ("x * 2 == 6", 3, True),
        ("x / 2 == 1.5", 3, True),
        ("-x < 0", 3, True),
        ("x / 0 > 1 or x > 0", 3, True),
        ("not x > 5", 3, True),
        ("x > 1 and x < 5", 3, True),
        ("x > 4 or x < 2", 3, False),
    ],
)
def test_each_operator(when: str, value: float, expected: bool) -> None:
    assert bool(book(when).observe(reading(0, x=value))) is expected


def test_an_unknown_reading_makes_a_comparison_unknown_and_logic_three_valued() -> None:
    assert book("not y > 1").observe(reading(0, x=1)) == []  # not unknown is unknown
    assert book("x > 0 or y > 1").observe(reading(0, x=1))  # true or unknown is true
    assert book("x > 0 and y > 1").observe(reading(0, x=1)) == []
    assert book("x / (x - 1) > 0 or x > 5").observe(reading(0, x=1)) == []  # division by 0


def test_a_rule_fires_once_per_episode_and_again_only_after_it_stopped_holding() -> None:
    rules = book("x > 1")
    assert fires(rules, *(reading(t, x=v) for t, v in enumerate([0, 2, 3, 4, 0, 5, 6]))) == [1, 5]


def test_for_needs_the_condition_to_hold_without_a_break() -> None:
    rules = book("a > 1 and b > 1 for 3s")
    facts = [
        reading(0, a=2, b=2),
        reading(1, a=2, b=2),
        reading(2, a=2, b=0),  # a break: the clock starts again
        reading(3, a=2, b=2),
        reading(5, a=2, b=2),
        reading(6, a=2, b=2),
        reading(7, a=2, b=2),
        reading(8, a=2, b=2),
    ]
    assert fires(rules, *facts) == [6]


def test_only_one_of_two_conditions_never_fires() -> None:
    rules = book("a > 1 and b > 1 for 2s")
    assert fires(rules, *(reading(t, a=5, b=0) for t in range(10))) == []


def test_time_passing_fires_a_sustained_rule_without_new_facts() -> None:
    rules = book("a > 1 for 10s")
    assert rules.observe(reading(0, a=2)) == []
    assert rules.tick(9.9) == []
    [firing] = rules.tick(10)
    assert firing.evidence == {"a": 2.0}
    assert rules.tick(11) == []


def test_count_and_rate_over_a_window_wait_until_it_was_watched_whole() -> None:
    rules = book("count(error) over 10s >= 3")
    assert fires(rules, event(0, "error"), event(1, "error"), event(2, "error")) == []
    assert rules.tick(9.5) == []
    [firing] = rules.tick(10)
    assert firing.evidence == {"count(error) over 10s": 3.0}
    rate = book("rate(*) over 10s > 0.5")
    assert fires(rate, *(event(t, "e") for t in range(11))) == [10]


def test_an_error_rate_over_five_minutes() -> None:
    rules = book("count('*.error') over 5m / count(*) over 5m > 0.05")
    facts = [event(t, "call.ok" if t % 10 else "call.error") for t in range(300)]
    assert fires(rules, *facts) == []  # 10% errors, but the window is not yet whole
    [firing] = rules.observe(event(300, "call.ok"))
    assert firing.evidence["count('*.error') over 5m"] == 30
    assert firing.evidence["count(*) over 5m"] >= 300  # type: ignore[operator]


def test_events_leave_the_window_as_time_passes() -> None:
    rules = book("count(e) over 60s < 2")
    assert fires(rules, event(0, "e"), event(1, "e"), event(30, "e")) == []
    assert rules.tick(60) == []  # three in the last minute
    assert rules.tick(61) == []  # the event at 0 has left; those at 1 and 30 remain
    assert [f.at for f in rules.tick(62)] == [62]


def test_a_silence_detector_fires_after_two_quiet_minutes_and_again_after_the_next_silence() -> (
    None
):
    rules = book("count(heartbeat) over 2m == 0")
    assert rules.tick(0) == []
    assert rules.tick(119) == []
    assert [f.at for f in rules.tick(120)] == [120]  # nothing at all since watching began
    assert fires(rules, event(130, "heartbeat")) == []
    assert rules.tick(200) == []
    assert rules.tick(251) == []
    assert [f.at for f in rules.tick(252)] == [252]


def test_value_aggregates() -> None:
    values = [3.0, 9.0, 1.0, 7.0, 5.0]
    expected = {
        "sum": 25.0,
        "avg": 5.0,
        "min": 1.0,
        "max": 9.0,
        "delta": 2.0,  # last 5 - first 3
        "deriv": 0.5,  # 2 over 4 s
        "p50": 5.0,
        "p95": 8.6,  # linear between the two highest ranks
    }
    for fn, value in expected.items():
        rules = book(f"x == 5 and {fn}(x) over 1m > -100")
        fired = [f for t, v in enumerate(values) for f in rules.observe(reading(t, x=v))]
        assert [f.at for f in fired] == [4], fn
        assert fired[0].evidence[f"{fn}(x) over 1m"] == pytest.approx(value), fn


def test_an_empty_value_window_is_unknown() -> None:
    rules = book("avg(x) over 10s < 1 or max(x) over 10s < 1")
    assert rules.observe(reading(0, y=5)) == []
    assert rules.tick(20) == []


def test_a_p95_latency_over_a_window() -> None:
    rules = book("p95(latency) over 1m > 500")
    calm = [reading(t, latency=100 + t) for t in range(40)]
    assert fires(rules, *calm) == []
    slow = [reading(40 + t, latency=2000) for t in range(5)]
    # Two slow of 42 leave the 95th percentile among the calm ones; the third reaches it.
    assert fires(rules, *slow) == [42]


def test_where_selects_events_by_their_fields_and_readings() -> None:
    rules = book("count(call where status == 'error' and ms > 100) over 5s >= 2")
    facts = [
        Fact(0, "call", {"ms": 500.0}, {"status": "error"}),
        Fact(1, "call", {"ms": 50.0}, {"status": "error"}),
        Fact(2, "call", {"ms": 500.0}, {"status": "ok"}),
        Fact(3, "other", {"ms": 500.0}, {"status": "error"}),
        Fact(5, "call", {"ms": 900.0}, {"status": "error"}),
    ]
    [firing] = [f for fact in facts for f in rules.observe(fact)]
    assert firing.at == 5


def test_grouping_by_a_field_judges_each_group_alone() -> None:
    rules = book("x > 1 for 2s by source")
    facts = [
        Fact(0, "r", {"x": 5.0}, {"source": "a"}),
        Fact(0, "r", {"x": 0.0}, {"source": "b"}),
        Fact(1, "r", {"x": 5.0}, {"source": "b"}),
        Fact(2, "r", {"x": 5.0}, {"source": "a"}),
        Fact(3, "r", {"x": 5.0}, {"source": "b"}),
        Fact(3, "r", {"x": 5.0}),  # no source: not in any group
    ]
    fired: list[Firing] = [f for fact in facts for f in rules.observe(fact)]
    assert [(f.group, f.at) for f in fired] == [("a", 2), ("b", 3)]


def test_groups_are_bounded_the_least_recently_seen_evicted() -> None:
    rules = book("x > 1 by source", Limits(max_groups=3))
    for i in range(10):
        rules.observe(Fact(i, "r", {"x": 0.0}, {"source": f"s{i}"}))
    assert rules.groups() == 3
    assert list(rules.states[0].groups) == ["s7", "s8", "s9"]
    assert rules.states[0].evicted == 7


def test_a_windows_memory_is_bounded_whatever_the_event_rate() -> None:
    limits = Limits(buckets=60, max_samples=100)
    rules = book("count(*) over 1m > 0 and p99(x) over 1m > 0", limits)
    for i in range(20_000):
        rules.observe(Fact(i * 0.01, "e", {"x": float(i)}))
    counting, percentile = rules.states[0].groups[""].windows
    assert len(counting.cells) <= 61
    assert len(percentile.samples) == 100
    assert counting.value("count", 199.99) == pytest.approx(6000, rel=0.02)


def test_latest_values_are_kept_only_for_the_readings_a_rule_names() -> None:
    rules = book("x > 100")
    rules.observe(Fact(0, "r", {f"other{i}": 1.0 for i in range(50)} | {"x": 1.0}))
    assert rules.states[0].groups[""].latest == {"x": 1.0}
