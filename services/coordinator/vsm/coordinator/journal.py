"""S2's decisions as a journal snapshot and back: the lanes (weights, dispatches, their place
in the fair share), the watched subjects (their reversals and damping) and the notes count.

Pure: `snapshot_of` reads System 2, `restore` rebuilds it. The detector runs on wall time, so
its instants are kept as they are; a lane's monotonic instants are not (a restored lane was
last touched at the restart). What waits in the lanes is not here: held work items stay
unacknowledged on `vsm.system2.work` and come back with their weights.
"""

from __future__ import annotations

from collections import deque

from vsm.contract.coordination import LaneRecord, SubjectRecord, System2Snapshot, TrendRecord
from vsm.coordinator.lanes import Lane
from vsm.coordinator.oscillation import Subject, Trend
from vsm.coordinator.system2 import System2


def weights(s2: System2) -> dict[str, int]:
    """The lanes' weights: a change of one is a decision to keep at once."""
    return {name: lane.weight for name, lane in s2.lanes.lanes.items()}


def snapshot_of(s2: System2) -> System2Snapshot:
    return System2Snapshot(
        lanes=[
            LaneRecord(
                lane=name, weight=lane.weight, dispatched=lane.dispatched, pass_value=lane.pass_
            )
            for name, lane in sorted(s2.lanes.lanes.items())
        ],
        floor=s2.lanes.floor,
        subjects=[
            SubjectRecord(
                subject=name,
                vsm_id=watched.vsm_id,
                last_seen=watched.last_seen,
                trends={
                    signal: TrendRecord(direction=t.direction, reversals=list(t.reversals))
                    for signal, t in sorted(watched.trends.items())
                },
                damped_until=watched.damped_until,
            )
            for name, watched in sorted(s2.detector.subjects.items())
        ],
        notes_delivered=s2.notes.delivered,
    )


def restore(s2: System2, snapshot: System2Snapshot, now: float) -> None:
    """Make System 2 what the snapshot says; `now` is the monotonic clock's reading."""
    s2.lanes.lanes = {
        r.lane: Lane(r.lane, r.weight, pass_=r.pass_value, dispatched=r.dispatched, touched=now)
        for r in snapshot.lanes
    }
    s2.lanes.floor = snapshot.floor
    s2.detector.subjects = {
        r.subject: Subject(
            r.vsm_id,
            r.last_seen,
            {s: Trend(t.direction, deque(t.reversals)) for s, t in r.trends.items()},
            r.damped_until,
        )
        for r in snapshot.subjects
    }
    s2.notes.delivered = snapshot.notes_delivered
