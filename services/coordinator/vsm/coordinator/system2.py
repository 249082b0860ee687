"""System 2 as one object: the fleet's capacity, the lanes, the detector and the notes.

Two clocks: the lanes and rate buckets run on a monotonic clock (`now`), the detector on
wall time (`wall`, epoch seconds), because damping ends at a moment S3 must read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from vsm.contract.coordination import System2State
from vsm.coordinator.capacity import Fleet
from vsm.coordinator.lanes import FairShare
from vsm.coordinator.notes import NoteLimiter
from vsm.coordinator.oscillation import Detector


@dataclass(frozen=True)
class Params:
    starvation_s: float = 1.0
    window_s: float = 60.0
    max_reversals: int = 3
    cooldown_s: float = 30.0
    note_rate_per_s: float = 10.0


class System2:
    def __init__(self, params: Params) -> None:
        self.fleet = Fleet()
        self.lanes = FairShare(params.starvation_s)
        self.detector = Detector(params.window_s, params.max_reversals, params.cooldown_s)
        self.notes = NoteLimiter(params.note_rate_per_s)

    def shed(self, lane: str, held_back: bool) -> None:
        """A defensive adaptation holds a lane's work back, or lets it go again."""
        if held_back:
            self.lanes.shed.add(lane)
        else:
            self.lanes.shed.discard(lane)

    def running(self, vsm_id: str) -> list[str]:
        return [a.agent_id for a in self.fleet.agents.values() if a.vsm_id == vsm_id]

    def systems(self, own: str) -> set[str]:
        """Every viable system S2 has something to say about (its own always)."""
        agents = {agent.vsm_id for agent in self.fleet.agents.values()}
        return {own} | agents | self.detector.systems()

    def running_by_system(self) -> dict[str, list[str]]:
        """`running` of every viable system, in one walk over the agents."""
        found: dict[str, list[str]] = {}
        for agent in self.fleet.agents.values():
            found.setdefault(agent.vsm_id, []).append(agent.agent_id)
        return found

    def index(self, vsm_id: str, wall: float, running: list[str] | None = None) -> float:
        """The system's oscillation index (`running`: its agents, when already known)."""
        agents = self.running(vsm_id) if running is None else running
        return self.detector.index(vsm_id, agents, wall)

    def state(self, vsm_id: str, now: float, wall: float) -> System2State:
        """Lanes are shared by every system; agents, oscillation and damping are `vsm_id`'s."""
        agents = [a for a in self.fleet.agents.values() if a.vsm_id == vsm_id]
        damped = self.detector.damping(vsm_id, wall)
        return System2State(
            lanes=self.lanes.state(now),
            capacity={a.agent_id: a.slots for a in agents},
            in_flight={a.agent_id: a.in_flight for a in agents},
            oscillation_index=self.index(vsm_id, wall),
            flapping=self.detector.flapping(vsm_id, wall),
            damped={s: datetime.fromtimestamp(t, UTC) for s, t in damped.items()},
            notes_delivered=self.notes.delivered,
        )
