"""Spawn validation per type, and the registry as a pure fold over its events."""

from datetime import UTC, datetime

import pytest

from vsm.contract.operations import AgentCrashed, AgentSpawned, AgentTerminated
from vsm.operations.registry import Registry, Rejected, new_agent

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_agent_gets_an_id_capabilities_and_defaults() -> None:
    agent = new_agent("llm_worker", {"tools": ["checksum"]}, NOW)
    assert agent.agent_id.startswith("llm-worker-")
    assert agent.capabilities == ["chat", "reset"]
    assert agent.config["max_tokens"] == 1024
    assert (agent.allocation, agent.max_allocation) == (4, 16)


@pytest.mark.parametrize(
    ("agent_type", "config", "code", "field"),
    [
        ("robot", {}, "invalid_agent_type", None),
        ("worker", {"allocation": 0}, "invalid_config", "config.allocation"),
        ("worker", {"allocation": 9, "max_allocation": 4}, "invalid_config", "config"),
        ("worker", {"surprise": 1}, "invalid_config", "config.surprise"),
        ("llm_worker", {"tools": ["rm_rf"]}, "invalid_config", "config.tools"),
        ("api", {}, "invalid_config", "config.base_urls"),
        ("sensor", {"source": "http"}, "invalid_config", "config"),
    ],
)
def test_invalid_spawns_are_rejected_with_the_field(
    agent_type: str, config: dict[str, object], code: str, field: str | None
) -> None:
    with pytest.raises(Rejected) as rejected:
        new_agent(agent_type, config, NOW)
    assert rejected.value.code == code
    if field is not None:
        assert rejected.value.details["errors"][0]["field"] == field


def test_events_fold_into_the_registry_once_each() -> None:
    registry = Registry()
    agent = new_agent("worker", {}, NOW)
    assert registry.apply("e1", AgentSpawned(agent=agent)) == agent
    assert registry.apply("e1", AgentSpawned(agent=agent)) is None
    crash = AgentCrashed(agent_id=agent.agent_id, agent_type="worker", error="boom", crashed_at=NOW)
    registry.apply("e2", crash)
    registry.apply("e2", crash)
    assert registry.find(agent.agent_id).crashes == 1
    end = AgentTerminated(
        agent_id=agent.agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    assert registry.apply("e3", end) is not None
    assert registry.listing(None, include_terminated=False) == []
    assert len(registry.listing(None, include_terminated=True)) == 1
    with pytest.raises(Rejected) as rejected:
        registry.find(agent.agent_id)
    assert rejected.value.code == "agent_not_found"
