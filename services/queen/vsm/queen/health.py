"""S5's view of the organisation's health: plain functions over the reports it has heard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vsm.contract import topology
from vsm.contract.agent_types import HOST_SERVICE, MAX_OFFERS
from vsm.contract.health import (
    ComponentStatus,
    HealthReport,
    HostStatus,
    ServiceState,
    SystemStatus,
)

DOWN_AFTER_INTERVALS = 2.5
"""An instance silent for this many of its own report intervals counts as down.

Reports come every interval, so a process that dies is shown down at most 3 intervals
after its last report, with half an interval of slack for a late beat.
"""


@dataclass(frozen=True)
class Sighting:
    report: HealthReport
    seen_at: datetime


@dataclass
class HealthBoard:
    """The last report of every instance of every service, keyed by (service, instance)."""

    sightings: dict[tuple[str, str], Sighting] = field(default_factory=dict)

    def record(self, report: HealthReport, now: datetime) -> None:
        self.sightings[(report.service, report.instance)] = Sighting(report, now)

    def forget_older_than(self, now: datetime, seconds: float) -> None:
        stale = [
            k for k, s in self.sightings.items() if (now - s.seen_at).total_seconds() > seconds
        ]
        for key in stale:
            del self.sightings[key]


def is_live(sighting: Sighting, now: datetime) -> bool:
    age = (now - sighting.seen_at).total_seconds()
    return age <= sighting.report.interval_s * DOWN_AFTER_INTERVALS


def component_status(service: str, board: HealthBoard, now: datetime) -> ComponentStatus:
    seen = [s for (name, _), s in board.sightings.items() if name == service]
    live = [s for s in seen if is_live(s, now)]
    state: ServiceState = "down"
    if live:
        state = "degraded" if any(s.report.state == "degraded" for s in live) else "up"
    newest = max(seen, key=lambda s: s.seen_at) if seen else None
    return ComponentStatus(
        service=service,
        role=topology.VSM_ROLE.get(service, "other"),
        state=state,
        last_seen=newest.seen_at if newest else None,
        instances=len(live),
        details=newest.report.details if newest else {},
    )


def host_status(sighting: Sighting, now: datetime) -> HostStatus:
    """An agent host: live or down, and the names of the types its last report offered."""
    report = sighting.report
    offers = report.details.get("offers")
    names = [
        str(offer.get("name"))[:32]
        for offer in (offers if isinstance(offers, list) else [])[:MAX_OFFERS]
        if isinstance(offer, dict)
    ]
    agents = report.details.get("agents")
    return HostStatus(
        instance=report.instance,
        state=report.state if is_live(sighting, now) else "down",
        last_seen=sighting.seen_at,
        offers=names,
        agents=agents if isinstance(agents, int) else 0,
    )


def system_status(board: HealthBoard, now: datetime, vsm_id: str) -> SystemStatus:
    """Every deployable's state (the system is up only when all of them are) and the agent
    hosts heard lately."""
    components = [component_status(service, board, now) for service in topology.SERVICES]
    states = {c.state for c in components}
    overall: ServiceState = (
        "up" if states == {"up"} else "down" if states == {"down"} else "degraded"
    )
    hosts = [
        host_status(sighting, now)
        for (service, _), sighting in sorted(board.sightings.items())
        if service == HOST_SERVICE
    ]
    return SystemStatus(vsm_id=vsm_id, state=overall, components=components, hosts=hosts)
