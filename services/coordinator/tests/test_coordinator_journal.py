"""S2's journal snapshot as plain data: lanes and damping come back as they were written."""

from __future__ import annotations

from vsm.contract.coordination import System2Snapshot
from vsm.coordinator import journal
from vsm.coordinator.system2 import Params, System2


def decided() -> System2:
    """Two lanes at their weights, one dispatch, a damped subject and a watched one."""
    s2 = System2(Params(window_s=60, max_reversals=3, cooldown_s=30))
    s2.lanes.add("heavy", 7, "w-1", "c-1", now=1.0)
    s2.lanes.add("light", 2, "w-1", "c-2", now=1.0)
    assert s2.lanes.next(2.0, lambda _: True) is not None
    for n, move in enumerate([1, -1, 1, -1]):
        s2.detector.observe("w-1", "root", "allocation", move, 1000.0 + n)
    s2.detector.observe("w-2", "root", "algedonic", -1, 1000.0)
    s2.notes.delivered = 4
    return s2


def test_a_restored_system2_keeps_its_weights_dispatches_and_damping() -> None:
    s2 = decided()
    written = journal.snapshot_of(s2)
    read_back = System2Snapshot.model_validate_json(written.model_dump_json())
    restored = System2(Params(window_s=60, max_reversals=3, cooldown_s=30))

    journal.restore(restored, read_back, now=50.0)

    assert journal.snapshot_of(restored) == written
    assert journal.weights(restored) == {"heavy": 7, "light": 2}
    assert restored.detector.damping("root", 1010.0) == {"w-1": 1003.0 + 30}
    assert restored.detector.flapping("root", 1010.0) == ["w-1"]
    # Damped once per cool-down, as before the restart: a further reversal damps no more.
    assert restored.detector.observe("w-1", "root", "allocation", 1, 1010.0) is None
    assert restored.state("root", 50.0, 1010.0).notes_delivered == 4


def test_the_monotonic_instants_of_a_lane_restart_with_the_process() -> None:
    restored = System2(Params())
    journal.restore(restored, journal.snapshot_of(decided()), now=50.0)
    lane = restored.lanes.lanes["heavy"]
    assert (lane.touched, lane.last_served, lane.size) == (50.0, None, 0)
    restored.lanes.forget_idle(50.0 + 3599, idle_s=3600)
    assert set(restored.lanes.lanes) == {"heavy", "light"}
