"""Replay protection: the window on `time`, the ids already handled, and retries that are not
replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsm.kit.replay import ReplayGuard, Stamp, stamp_of

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW_S, SKEW_S = 300.0, 30.0


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock: Clock) -> ReplayGuard:
    return ReplayGuard(WINDOW_S, SKEW_S, clock=clock)


def stamp(message_id: str = "m1", *, age_s: float = 0.0, queue: str = "q") -> Stamp:
    return Stamp(queue, message_id, T0 - timedelta(seconds=age_s))


def handle(guard: ReplayGuard, sent: Stamp, *, redelivered: bool = False) -> str | None:
    refusal = guard.admit(sent, redelivered=redelivered)
    if refusal is None:
        guard.settle(sent, handled=True)
    return refusal


def test_a_fresh_message_is_admitted_once(guard: ReplayGuard) -> None:
    assert handle(guard, stamp()) is None
    assert handle(guard, stamp()) == "replayed"
    assert handle(guard, stamp("m2")) is None
    assert len(guard) == 2


def test_ids_are_kept_per_queue(guard: ReplayGuard) -> None:
    """One envelope fanned out to two queues of a service is two deliveries, not a replay."""
    assert handle(guard, stamp(queue="a")) is None
    assert handle(guard, stamp(queue="b")) is None


def test_a_replay_inside_the_window_is_refused_outside_it_is_stale(
    guard: ReplayGuard, clock: Clock
) -> None:
    assert handle(guard, stamp()) is None
    clock.advance(WINDOW_S - 1)
    assert handle(guard, stamp()) == "replayed"
    clock.advance(2)
    assert handle(guard, stamp()) == "stale"


def test_records_expire_with_the_window(guard: ReplayGuard, clock: Clock) -> None:
    for number in range(100):
        assert handle(guard, stamp(f"m{number}")) is None
    assert len(guard) == 100
    clock.advance(WINDOW_S + 1)
    assert handle(guard, stamp("late", age_s=-WINDOW_S)) is None  # sent just now
    assert len(guard) == 1


@pytest.mark.parametrize(
    ("age_s", "refusal"),
    [
        (WINDOW_S + 0.001, "stale"),
        (WINDOW_S, None),
        (0.0, None),
        (-SKEW_S, None),  # a sender whose clock runs ahead, within the tolerance
        (-SKEW_S - 0.001, "from_future"),
        (-3600.0, "from_future"),
    ],
)
def test_the_window_and_the_tolerated_skew(
    guard: ReplayGuard, age_s: float, refusal: str | None
) -> None:
    assert guard.admit(stamp(age_s=age_s), redelivered=False) == refusal


def test_a_redelivery_is_not_a_replay(guard: ReplayGuard) -> None:
    """The ack was lost after the record was made: the broker's redelivery is a retry."""
    assert handle(guard, stamp()) is None
    assert handle(guard, stamp(), redelivered=True) is None
    assert handle(guard, stamp(), redelivered=False) == "replayed"


def test_a_redelivery_is_still_held_to_the_window(guard: ReplayGuard, clock: Clock) -> None:
    clock.advance(WINDOW_S + 1)
    assert guard.admit(stamp(), redelivered=True) == "stale"


def test_an_id_is_recorded_only_once_its_message_was_handled(guard: ReplayGuard) -> None:
    """A failure (redelivered later) or a dead letter leaves no record behind."""
    first = guard.admit(stamp(), redelivered=False)
    assert first is None
    guard.settle(stamp(), handled=False)
    assert guard.admit(stamp(), redelivered=False) is None
    assert len(guard) == 0


def test_a_copy_arriving_while_the_original_is_in_flight_is_a_replay(guard: ReplayGuard) -> None:
    assert guard.admit(stamp(), redelivered=False) is None
    assert guard.admit(stamp(), redelivered=False) == "replayed"
    guard.settle(stamp(), handled=True)
    assert guard.admit(stamp(), redelivered=False) == "replayed"


def test_a_replay_that_could_not_be_parked_is_refused_again_when_redelivered(
    guard: ReplayGuard,
) -> None:
    assert handle(guard, stamp()) is None
    assert guard.admit(stamp(), redelivered=False) == "replayed"
    guard.refusal_unsettled(stamp())  # the dead letter failed; the copy comes back
    assert guard.admit(stamp(), redelivered=True) == "replayed"


def test_the_stamp_is_read_from_the_envelope_as_its_schema_would() -> None:
    envelope = {"id": "m1", "time": "2024-05-01T12:00:00Z"}
    assert stamp_of("q", envelope) == Stamp("q", "m1", T0)
    assert stamp_of("q", {"id": "m1", "time": "2024-05-01T12:00:00"}) is None  # naive
    assert stamp_of("q", {"id": "m1"}) is None
    assert stamp_of("q", {"id": "", "time": "2024-05-01T12:00:00Z"}) is None
    assert stamp_of("q", {"id": 7, "time": "2024-05-01T12:00:00Z"}) is None
    assert stamp_of("q", {"id": "x" * 129, "time": "2024-05-01T12:00:00Z"}) is None
    assert stamp_of("q", ["m1"]) is None


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        ReplayGuard(0, 30)
