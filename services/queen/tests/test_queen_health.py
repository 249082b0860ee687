"""S5's view of health: services from their reports, and the agent hosts heard lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vsm.contract.health import HealthReport
from vsm.queen.health import HealthBoard, system_status

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def report(service: str, instance: str, **details: object) -> HealthReport:
    return HealthReport(
        service=service,
        instance=instance,
        role="S1",
        state="up",
        interval_s=5.0,
        started_at=NOW - timedelta(hours=1),
        details=details,
    )


def test_agent_hosts_are_shown_with_their_offers_and_agents() -> None:
    board = HealthBoard()
    tally = {"name": "tally", "version": "1", "description": "", "config_schema": {}}
    board.record(report("agent-host", "host-a", offers=[tally], agents=3), NOW)
    board.record(report("agent-host", "host-b", offers="nonsense", agents="x"), NOW)
    board.record(report("agent-host", "host-c", offers=[tally]), NOW - timedelta(seconds=60))
    board.record(report("operations", "ops-1", agents=2), NOW)

    status = system_status(board, NOW, "root")
    hosts = {h.instance: h for h in status.hosts}
    assert set(hosts) == {"host-a", "host-b", "host-c"}
    assert (hosts["host-a"].state, hosts["host-a"].offers, hosts["host-a"].agents) == (
        "up",
        ["tally"],
        3,
    )
    assert (hosts["host-b"].offers, hosts["host-b"].agents) == ([], 0)
    assert hosts["host-c"].state == "down"
    assert "agent-host" not in {c.service for c in status.components}


def test_each_instance_is_down_after_two_and_a_half_of_its_own_intervals() -> None:
    """Services beat at their own pace (operations every 2 s, the others every 10 s by
    default): the board judges each by the interval its report carries."""
    board, watched = HealthBoard(), {"control", "operations"}
    slow = report("control", "s3-1").model_copy(update={"interval_s": 10.0})
    fast = report("operations", "ops-1").model_copy(update={"interval_s": 2.0})
    board.record(slow, NOW)
    board.record(fast, NOW)

    def states(after_s: float) -> dict[str, str]:
        status = system_status(board, NOW + timedelta(seconds=after_s), "root")
        return {c.service: c.state for c in status.components if c.service in watched}

    assert states(5.0) == {"control": "up", "operations": "up"}
    assert states(6.0) == {"control": "up", "operations": "down"}
    assert states(26.0) == {"control": "down", "operations": "down"}
