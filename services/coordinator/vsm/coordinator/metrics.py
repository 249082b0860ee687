"""What S2 counts: the oscillation index, coordination events, and each lane's work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from vsm.kit.labels import OTHER, BoundedLabel

EventKind = Literal["oscillation", "damping", "rescheduled", "note"]
MAX_VSM_IDS = 256
"""Viable systems labelled by id; later ones count as `other`."""
MAX_LANES = 64
"""Lanes labelled by name (work items choose them); later ones count as `other`."""


@dataclass(frozen=True)
class Metrics:
    oscillation_index: Gauge
    events: Counter
    lane_queued: Gauge
    lane_dispatched: Counter
    lanes: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_LANES))
    vsm_ids: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_VSM_IDS))

    def oscillation(self, vsm_id: str, index: float) -> None:
        if (named := self.vsm_ids(vsm_id)) != OTHER:
            self.oscillation_index.labels(named).set(index)

    def dispatched(self, lane: str) -> None:
        self.lane_dispatched.labels(self.lanes(lane)).inc()

    def queued(self, lane: str, size: int) -> None:
        """The lane's waiting items; a lane past `MAX_LANES` has no gauge of its own."""
        if (named := self.lanes(lane)) != OTHER:
            self.lane_queued.labels(named).set(size)

    def event(self, vsm_id: str, kind: EventKind) -> None:
        self.events.labels(self.vsm_ids(vsm_id), kind).inc()


def create_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        oscillation_index=Gauge(
            "vsm_oscillation_index",
            "Share of watched S1 units flapping (0 calm .. 1 all flapping).",
            ["vsm_id"],
            registry=registry,
        ),
        events=Counter(
            "vsm_coordination_events",
            "S2 coordination events: oscillation, damping, rescheduled, note.",
            ["vsm_id", "kind"],
            registry=registry,
        ),
        lane_queued=Gauge(
            "vsm_lane_queued", "Work items held in a lane, waiting.", ["lane"], registry=registry
        ),
        lane_dispatched=Counter(
            "vsm_lane_dispatched", "Work items dispatched from a lane.", ["lane"], registry=registry
        ),
    )
