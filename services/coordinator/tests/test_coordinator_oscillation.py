"""The anti-oscillation detector: reversals within a window, one damping per cool-down, index."""

from __future__ import annotations

import pytest

from vsm.coordinator.capacity import direction
from vsm.coordinator.oscillation import Detector, algedonic_subject


def detector() -> Detector:
    return Detector(window_s=60, max_reversals=3, cooldown_s=30)


def moves(d: Detector, subject: str, directions: list[int], start: float = 0.0, step: float = 1.0):
    flaps = []
    for n, move in enumerate(directions):
        flap = d.observe(subject, "root", "allocation", move, start + n * step)
        if flap is not None:
            flaps.append(flap)
    return flaps


def test_three_reversals_within_the_window_flap_once_and_damp_for_the_cool_down() -> None:
    d = detector()
    flaps = moves(d, "w1", [1, -1, 1, -1])
    assert len(flaps) == 1
    flap = flaps[0]
    assert (flap.subject, flap.signal, flap.reversals) == ("w1", "allocation", 3)
    assert flap.until == 3.0 + 30
    assert d.damped("w1", 10.0)
    assert d.flapping("root", 10.0) == ["w1"]


def test_no_second_damping_while_the_cool_down_lasts() -> None:
    d = detector()
    moves(d, "w1", [1, -1, 1, -1])
    assert moves(d, "w1", [1, -1, 1, -1, 1], start=4.0) == []
    again = moves(d, "w1", [-1, 1], start=40.0)
    assert len(again) == 1  # the cool-down ended, and it still flaps
    assert again[0].until == 40.0 + 30


def test_moving_one_way_is_no_oscillation() -> None:
    d = detector()
    assert moves(d, "w1", [1, 1, 1, -1, -1, -1, -1]) == []
    assert d.flapping("root", 7.0) == []


def test_reversals_further_apart_than_the_window_do_not_flap() -> None:
    d = detector()
    assert moves(d, "w1", [1, -1, 1, -1, 1, -1], step=35.0) == []


def test_signals_are_counted_apart_but_damping_is_per_subject() -> None:
    d = detector()
    for n, move in enumerate([1, -1, 1]):
        assert d.observe("w1", "root", "allocation", move, n) is None
    for n, move in enumerate([-1, 1, -1]):
        assert d.observe("w1", "root", "algedonic", move, 3 + n) is None
    assert d.observe("w1", "root", "algedonic", 1, 6) is not None
    assert d.observe("w1", "root", "allocation", -1, 7) is None  # already damped


def test_no_change_is_not_a_move() -> None:
    d = detector()
    assert moves(d, "w1", [1, 0, -1, 0, 1, 0]) == []


def test_the_index_is_the_share_of_watched_subjects_flapping() -> None:
    d = detector()
    moves(d, "w1", [1, -1, 1, -1])
    moves(d, "w2", [1, 1])
    assert d.index("root", ["w1", "w2", "w3", "w4"], 5.0) == 0.25
    assert d.index("root", [], 5.0) == 0.5  # observed subjects count as watched
    assert d.index("root/child", ["c1"], 5.0) == 0.0
    assert d.index("root", ["w1", "w2", "w3", "w4"], 100.0) == 0.0  # reversals left the window


def test_calm_subjects_are_forgotten_but_damped_ones_kept() -> None:
    d = detector()
    moves(d, "w1", [1, -1])
    moves(d, "w2", [1, -1, 1, -1], start=40.0)
    d.forget_calm(70.0)
    assert set(d.subjects) == {"w2"}
    assert d.damping("root", 70.0) == {"w2": 43.0 + 30}


@pytest.mark.parametrize(
    ("origin", "context", "subject"),
    [
        ("operations/worker-ab12", {}, "worker-ab12"),
        ("mcp-gateway/rest", {"agent_id": "api-9"}, "api-9"),
        ("mcp-gateway/rest", {}, None),
        ("operations/", {}, None),
        ("mcp-gateway/rest", {"agent_id": "not.an.agent"}, None),
        ("mcp-gateway/rest", {"agent_id": 7}, None),
    ],
)
def test_the_subject_of_an_algedonic_signal(
    origin: str, context: dict[str, object], subject: str | None
) -> None:
    assert algedonic_subject(origin, context) == subject


@pytest.mark.parametrize(
    ("before", "after", "move"),
    [
        ((2, None), (4, None), 1),
        ((4, None), (2, None), -1),
        ((4, None), (4, 5.0), -1),  # no rate is unlimited
        ((4, 5.0), (4, None), 1),
        ((4, 5.0), (4, 2.0), -1),
        ((4, 5.0), (4, 5.0), 0),
        ((2, 9.0), (4, 1.0), 1),  # slots decide first
    ],
)
def test_the_direction_of_an_allocation_change(
    before: tuple[int, float | None], after: tuple[int, float | None], move: int
) -> None:
    assert direction(before, after) == move


def test_a_type_scaled_up_and_down_again_and_again_is_damped_like_an_allocation() -> None:
    d = detector()
    flaps = []
    for n, move in enumerate([1, -1, 1, -1, 1]):  # spawned, retired, spawned, ...
        flap = d.observe("scale:worker", "root", "scale", move, float(n))
        if flap is not None:
            flaps.append(flap)
    assert [(f.subject, f.signal, f.reversals) for f in flaps] == [("scale:worker", "scale", 3)]
    assert d.damped("scale:worker", 10.0)
    assert d.flapping("root", 10.0) == ["scale:worker"]
