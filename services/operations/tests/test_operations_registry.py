"""Spawn validation per type, and the registry as a pure fold over its events."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from vsm.contract.errors import Refused
from vsm.contract.operations import (
    AgentCrashed,
    AgentInfo,
    AgentRehomed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
    RegistrySnapshot,
    SpawnAgent,
)
from vsm.kit.egress import EgressPolicy
from vsm.operations.admission import admit
from vsm.operations.agents.catalog import AGENT_TYPES, describe_types
from vsm.operations.registry import Registry, new_agent

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
    with pytest.raises(Refused) as rejected:
        new_agent(agent_type, config, NOW)
    assert rejected.value.code == code
    if field is not None:
        assert rejected.value.details["errors"][0]["field"] == field


def test_events_fold_into_the_registry_once_each() -> None:
    registry = Registry()
    agent = new_agent("worker", {}, NOW)
    assert registry.apply("e1", AgentSpawned(agent=agent)) == [agent]
    assert registry.apply("e1", AgentSpawned(agent=agent)) == []
    crash = AgentCrashed(agent_id=agent.agent_id, agent_type="worker", error="boom", crashed_at=NOW)
    registry.apply("e2", crash)
    registry.apply("e2", crash)
    assert registry.find(agent.agent_id).crashes == 1
    end = AgentTerminated(
        agent_id=agent.agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    assert registry.apply("e3", end) != []
    assert registry.listing(None, include_terminated=False) == []
    assert len(registry.listing(None, include_terminated=True)) == 1
    with pytest.raises(Refused) as rejected:
        registry.find(agent.agent_id)
    assert rejected.value.code == "agent_not_found"


EGRESS = EgressPolicy.parse(
    ["https://api.example.com/v1/", "http://127.0.0.1:8007/", "http://127.0.0.1:8008/"],
    ["127.0.0.1:8007"],
)


@pytest.mark.parametrize(
    ("agent_type", "config", "field", "named"),
    [
        ("api", {"base_urls": ["https://api.example.com/v2/"]}, "config.base_urls.0", "LIST"),
        (
            "api",
            {"base_urls": ["https://api.example.com/v1/", "http://169.254.169.254/"]},
            "config.base_urls.1",
            "LIST",
        ),
        ("api", {"base_urls": ["http://127.0.0.1:8008/"]}, "config.base_urls.0", "PRIVATE"),
        ("api", {"base_urls": ["http://127.1:8008/"]}, "config.base_urls.0", "PRIVATE"),
        ("sensor", {"source": "http", "url": "http://localhost:8007/m"}, "config.url", "LIST"),
        ("sensor", {"source": "http", "url": "http://10.0.0.1/"}, "config.url", "LIST"),
    ],
)
def test_a_spawn_that_would_call_outside_the_egress_policy_is_refused_naming_the_field(
    agent_type: str, config: dict[str, object], field: str, named: str
) -> None:
    with pytest.raises(Refused) as rejected:
        new_agent(agent_type, config, NOW, egress=EGRESS)
    assert rejected.value.code == "invalid_config"
    [problem] = rejected.value.details["errors"]
    assert (problem["field"], problem["code"]) == (field, "destination_not_allowed")
    assert f"EGRESS_ALLOWED_{'URLS' if named == 'LIST' else 'PRIVATE'}" in problem["message"]
    assert field in rejected.value.message


def test_a_spawn_within_the_egress_policy_is_granted_and_without_one_nothing_calls_out() -> None:
    api = {"base_urls": ["https://api.example.com/v1/things", "http://127.0.0.1:8007/"]}
    assert new_agent("api", api, NOW, egress=EGRESS).config["base_urls"] == [
        "https://api.example.com/v1/things",
        "http://127.0.0.1:8007/",
    ]
    new_agent("sensor", {"source": "http", "url": "http://127.0.0.1:8007/m"}, NOW, egress=EGRESS)
    new_agent("sensor", {"source": "host"}, NOW)
    with pytest.raises(Refused, match="EGRESS_ALLOWED_URLS"):
        new_agent("api", {"base_urls": ["https://api.example.com/v1/"]}, NOW)


def test_every_command_of_every_type_declares_its_input_schema() -> None:
    described = {t.agent_type: t for t in describe_types()}
    assert set(described) == {"worker", "llm_worker", "sensor", "api"}
    for kind in described.values():
        assert set(kind.commands) == set(kind.capabilities)
        for name, command in kind.commands.items():
            assert command.description == kind.capabilities[name]
            assert command.input_schema["type"] == "object"
    analyze = described["worker"].commands["analyze"]
    assert analyze.input_schema["required"] == ["values"]
    assert analyze.output_schema is not None
    assert "trend" in analyze.output_schema["properties"]
    assert described["worker"].commands["transform"].output_schema is None


def test_a_batch_folds_in_as_each_of_its_agents_once() -> None:
    registry = Registry()
    agents = [new_agent("worker", {}, NOW) for _ in range(5)]
    assert registry.apply("b1", AgentsSpawned(agents=agents[:3])) == agents[:3]
    assert registry.apply("b1", AgentsSpawned(agents=agents[:3])) == []  # replayed
    # A batch naming one agent already known (a single event logged it) adds the others.
    registry.apply("s3", AgentSpawned(agent=agents[3]))
    assert registry.apply("b2", AgentsSpawned(agents=agents[3:])) == agents[4:]
    assert registry.live == 5
    ids = [a.agent_id for a in agents]
    end = AgentsTerminated(agent_ids=ids[1:4], agent_type="worker", reason="x", terminated_at=NOW)
    ended = registry.apply("t1", end)
    assert [a.agent_id for a in ended] == ids[1:4]
    assert {a.state for a in ended} == {"terminated"}
    assert registry.apply("t1", end) == []
    # Terminated again together with one still running: only that one changes.
    more = AgentsTerminated(agent_ids=ids[3:], agent_type="worker", reason="x", terminated_at=NOW)
    assert [a.agent_id for a in registry.apply("t2", more)] == [ids[4]]
    assert registry.live == 1
    assert [a.agent_id for a in registry.running()] == [ids[0]]


def test_a_registry_restored_from_a_snapshot_takes_a_batch_after_it_once() -> None:
    writer, reader = Registry(), Registry()
    agents = [new_agent("worker", {}, NOW) for _ in range(4)]
    writer.apply("b1", AgentsSpawned(agents=agents[:2]))
    writer.apply("b2", AgentsSpawned(agents=agents[2:]))  # applied ahead of the stream
    snapshot = RegistrySnapshot(agents=writer.running(), covers=0, ahead=["b2"])
    reader.restore(snapshot.agents, snapshot.ahead)
    assert reader.apply("b2", AgentsSpawned(agents=agents[2:])) == []
    assert reader.live == 4


@pytest.mark.parametrize(
    "build",
    [
        lambda a, b: AgentsSpawned(agents=[]),
        lambda a, b: AgentsSpawned(agents=[a, b.model_copy(update={"agent_type": "sensor"})]),
        lambda a, b: AgentsSpawned(agents=[a, b.model_copy(update={"vsm_id": "root/x"})]),
        lambda a, b: AgentsSpawned(agents=[a, a]),
        lambda a, b: AgentsSpawned(agents=[a] * 65),
        lambda a, b: AgentsTerminated(
            agent_ids=[], agent_type="worker", reason="x", terminated_at=NOW
        ),
        lambda a, b: AgentsTerminated(
            agent_ids=[a.agent_id] * 2, agent_type="worker", reason="x", terminated_at=NOW
        ),
    ],
    ids=["empty", "two-types", "two-systems", "twice", "too-many", "none-ended", "ended-twice"],
)
def test_a_malformed_batch_is_no_event(build: Any) -> None:
    a, b = new_agent("worker", {}, NOW), new_agent("worker", {}, NOW)
    with pytest.raises(ValidationError):
        build(a, b)


def test_a_page_of_the_listing_comes_with_how_many_there_are() -> None:
    registry = Registry()
    spawned = [new_agent("worker", {}, NOW) for _ in range(7)] + [new_agent("sensor", {}, NOW)]
    for index, agent in enumerate(spawned):
        registry.apply(f"s{index}", AgentSpawned(agent=agent))
    everyone = registry.listing(None, include_terminated=False)
    assert registry.page(None, False, 0, 3) == (everyone[:3], 8)
    assert registry.page(None, False, 6, 3) == (everyone[6:], 8)
    assert registry.page(None, False, 9, 3) == ([], 8)
    assert registry.page("worker", False, 5, None) == (
        [a for a in everyone if a.agent_type == "worker"][5:],
        7,
    )


def test_a_system_runs_at_most_its_quota_of_agents_and_a_terminated_one_frees_a_place() -> None:
    registry = Registry()
    agents = [new_agent("worker", {}, NOW, vsm_id="root/a") for _ in range(3)]
    for index, agent in enumerate(agents):
        registry.apply(f"s{index}", AgentSpawned(agent=agent))
    one = [SpawnAgent(agent_type="worker")]
    (elsewhere,) = admit(one, registry.agents.values(), "root", 3, now=NOW)
    assert isinstance(elsewhere, AgentInfo)  # another system's count
    (refused,) = admit(one, registry.agents.values(), "root/a", 3, now=NOW)
    assert isinstance(refused, Refused)
    assert refused.code == "quota_exceeded"
    assert refused.details["quota"] == "AGENTS_PER_SYSTEM"
    gone = AgentTerminated(
        agent_id=agents[0].agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    registry.apply("t0", gone)
    (again,) = admit(one, registry.agents.values(), "root/a", 3, now=NOW)
    assert isinstance(again, AgentInfo)


def test_a_batch_counts_its_own_items_against_the_quota_and_the_names() -> None:
    items = [
        SpawnAgent(agent_type="worker", name="w"),
        SpawnAgent(agent_type="robot"),
        SpawnAgent(agent_type="worker", name="w"),
        SpawnAgent(agent_type="worker"),
        SpawnAgent(agent_type="worker"),
    ]
    admitted = admit(items, [], "root", 2, now=NOW)
    codes = [a.code if isinstance(a, Refused) else a.name for a in admitted]
    assert codes == ["w", "invalid_agent_type", "name_taken", None, "quota_exceeded"]
    pending = [a for a in admitted if isinstance(a, AgentInfo)]
    (later,) = admit(items[3:4], pending, "root", 2, now=NOW)  # those still being spawned count
    assert isinstance(later, Refused)
    assert later.code == "quota_exceeded"


def test_a_rehomed_agent_belongs_to_its_new_system_once_running() -> None:
    registry = Registry()
    agent = new_agent("worker", {}, NOW)
    registry.apply("e1", AgentSpawned(agent=agent))
    there = agent.model_copy(update={"vsm_id": "root/worker"})
    moved = AgentRehomed(agent=there, from_vsm_id="root", reason="structure")
    assert registry.apply("e2", moved) == [there]
    assert registry.of_type("root", "worker") == []
    assert registry.of_type("root/worker", "worker") == [there]
    end = AgentTerminated(
        agent_id=agent.agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    registry.apply("e3", end)
    back = AgentRehomed(agent=agent, from_vsm_id="root/worker", reason="structure")
    assert registry.apply("e4", back) == []  # a terminated agent moves nowhere


def test_a_lookup_taken_before_a_restore_finds_the_restored_agents() -> None:
    # The agent host keeps `registry.get` from the start; a replica then restores the registry
    # from a snapshot, and activates the agents of a partition it takes over through it.
    registry = Registry()
    lookup = registry.get
    agent = new_agent("worker", {}, NOW)
    registry.restore([agent], applied=["e1"])
    assert lookup(agent.agent_id) == agent
    assert lookup("worker-unknown") is None


def test_a_bulk_terminate_finds_each_running_agent_once_in_order() -> None:
    registry = Registry()
    running, ended = (new_agent("worker", {}, NOW) for _ in range(2))
    registry.apply("s0", AgentSpawned(agent=running))
    registry.apply("s1", AgentSpawned(agent=ended))
    gone = AgentTerminated(
        agent_id=ended.agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    registry.apply("t1", gone)
    ids = ["ghost", running.agent_id, ended.agent_id, running.agent_id]

    found = registry.find_each(ids)

    assert found[1] == running
    refused = [f for f in found if isinstance(f, Refused)]
    assert [r.code for r in refused] == ["agent_not_found"] * 3
    assert [r.details["agent_id"] for r in refused] == ["ghost", ended.agent_id, running.agent_id]
    assert "terminated" in refused[1].message
    assert "earlier in this request" in refused[2].message


def test_only_the_latest_terminated_agents_are_kept_and_a_replay_revives_none() -> None:
    registry = Registry(terminated_kept=2)
    agents = [new_agent("worker", {}, NOW) for _ in range(4)]
    for i, agent in enumerate(agents):
        registry.apply(f"s{i}", AgentSpawned(agent=agent))
    for i, agent in enumerate(agents[:3]):
        end = AgentTerminated(
            agent_id=agent.agent_id, agent_type="worker", reason="done", terminated_at=NOW
        )
        registry.apply(f"t{i}", end)

    assert registry.get(agents[0].agent_id) is None  # the oldest ended one is forgotten
    assert [a.state for a in map(registry.get, [a.agent_id for a in agents[1:]])] == [
        "terminated",
        "terminated",
        "running",
    ]
    assert len(registry.listing(None, include_terminated=True)) == 3
    assert registry.apply("s0", AgentSpawned(agent=agents[0])) == []
    assert registry.get(agents[0].agent_id) is None
    assert registry.live == 1


def test_the_ids_of_applied_events_are_a_bounded_window_of_the_latest() -> None:
    registry = Registry(applied_kept=3)
    agents = [new_agent("worker", {}, NOW) for _ in range(5)]
    for i, agent in enumerate(agents):
        registry.apply(f"s{i}", AgentSpawned(agent=agent))
    assert list(registry.applied) == ["s2", "s3", "s4"]  # memory bounded whatever the churn
    end = AgentTerminated(
        agent_id=agents[4].agent_id, agent_type="worker", reason="done", terminated_at=NOW
    )
    assert registry.apply("t4", end) != []
    assert registry.apply("t4", end) == []  # a recent event comes back: nothing changes
    assert registry.live == 4


def test_only_types_that_work_between_commands_stay_active() -> None:
    kinds = {name: kind.stays_active for name, kind in AGENT_TYPES.items()}
    assert kinds["sensor"] is True  # it polls its source
    assert {name for name, active in kinds.items() if not active} >= {"worker", "llm_worker"}
