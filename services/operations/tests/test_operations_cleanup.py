"""Which terminated agents a replica deletes the results exchanges of again at start-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vsm.contract.operations import AgentInfo
from vsm.operations.cleanup import terminated_within
from vsm.operations.registry import new_agent

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def test_only_the_agents_terminated_within_the_window_are_cleaned_again() -> None:
    def agent(agent_id: str, ended: datetime | None) -> AgentInfo:
        born = new_agent("worker", {}, NOW - timedelta(hours=1))
        update: dict[str, object] = {"agent_id": agent_id}
        if ended is not None:
            update |= {"state": "terminated", "terminated_at": ended}
        return born.model_copy(update=update)

    agents = [
        agent("worker-000000000001", None),  # running
        agent("worker-000000000002", NOW - timedelta(minutes=2)),
        agent("worker-000000000003", NOW - timedelta(minutes=30)),  # long gone
        agent("worker-000000000004", (NOW - timedelta(minutes=5)).replace(tzinfo=None)),
    ]

    ids = terminated_within(agents, NOW, timedelta(minutes=10))

    assert ids == ["worker-000000000002", "worker-000000000004"]
