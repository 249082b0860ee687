"""The plan as a pure function of (file, running state): no broker, no gateway."""

from __future__ import annotations

from typing import Any

from vsm.cli.organisation.model import Organisation
from vsm.cli.organisation.plan import plan
from vsm.cli.organisation.state import RunningAgent, RunningSystem, State
from vsm.cli.organisation.steps import Plan

WORKER_SCHEMA: dict[str, Any] = {
    "properties": {
        "allocation": {"default": 4, "type": "integer"},
        "max_allocation": {"default": 16, "type": "integer"},
        "algedonic": {"$ref": "#/$defs/Thresholds"},
    },
    "$defs": {
        "Thresholds": {
            "properties": {"pain_errors": {"default": 5}, "calm_s": {"default": 10.0}},
        }
    },
}
API_SCHEMA: dict[str, Any] = {
    "properties": {
        "allocation": {"default": 4, "type": "integer"},
        "base_urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "mapping": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["base_urls"],
}
TYPES = {"worker": WORKER_SCHEMA, "api": API_SCHEMA}
STORED_WORKER = {
    "allocation": 4,
    "max_allocation": 16,
    "algedonic": {"pain_errors": 5, "calm_s": 10.0},
}


def organisation(**fields: Any) -> Organisation:
    return Organisation.model_validate(fields)


def running(name: str | None, kind: str = "worker", **config: Any) -> RunningAgent:
    return RunningAgent(f"{kind}-{name or 'x'}", name, kind, {**STORED_WORKER, **config})


def state(*agents: RunningAgent, **systems: RunningSystem) -> State:
    children = tuple(s.vsm_id for s in systems.values() if s.vsm_id.count("/") == 1)
    root = RunningSystem("root", agents=agents, children=children)
    return State(
        systems={"root": root, **{s.vsm_id: s for s in systems.values()}}, agent_types=TYPES
    )


def actions(found: Plan) -> list[tuple[str, str, str]]:
    return [(s.action, s.kind, s.name) for s in found.steps]


def test_an_empty_system_gets_every_declared_agent_with_counted_names() -> None:
    file = organisation(
        agents=[{"name": "w", "type": "worker", "count": 3}, {"name": "s", "type": "sensor"}]
    )
    found = plan(file, state())
    assert actions(found) == [
        ("create", "agent", "w-1"),
        ("create", "agent", "w-2"),
        ("create", "agent", "w-3"),
        ("create", "agent", "s"),
    ]
    assert found.steps[0].body == {"type": "worker", "config": {}, "name": "w-1"}


def test_a_system_that_matches_the_file_needs_nothing() -> None:
    file = organisation(agents=[{"name": "w", "type": "worker", "count": 2}])
    assert plan(file, state(running("w-1"), running("w-2"))).steps == ()


def test_defaults_filled_in_by_the_registry_are_no_difference() -> None:
    file = organisation(
        agents=[{"name": "w", "type": "worker", "config": {"algedonic": {"calm_s": 10}}}]
    )
    assert plan(file, state(running("w"))).steps == ()


def test_a_url_normalised_by_the_registry_is_no_difference() -> None:
    declared = {"base_urls": ["http://127.0.0.1:8007"]}
    file = organisation(agents=[{"name": "a", "type": "api", "config": declared}])
    stored = RunningAgent(
        "api-1",
        "a",
        "api",
        {"allocation": 4, "base_urls": ["http://127.0.0.1:8007/"], "mapping": {}},
    )
    assert plan(file, state(stored)).steps == ()


def test_a_changed_config_replaces_the_agent() -> None:
    file = organisation(agents=[{"name": "w", "type": "worker", "config": {"allocation": 2}}])
    found = plan(file, state(running("w")))
    assert actions(found) == [("replace", "agent", "w")]
    assert found.steps[0].agent_id == "worker-w"
    assert "allocation" in found.steps[0].detail


def test_a_config_key_dropped_from_the_file_goes_back_to_its_default() -> None:
    file = organisation(agents=[{"name": "w", "type": "worker"}])
    assert actions(plan(file, state(running("w", allocation=8)))) == [("replace", "agent", "w")]


def test_a_changed_type_replaces_the_agent() -> None:
    file = organisation(
        agents=[{"name": "w", "type": "api", "config": {"base_urls": ["http://x/"]}}]
    )
    found = plan(file, state(running("w")))
    assert actions(found) == [("replace", "agent", "w")]
    assert found.steps[0].detail == "type worker -> api"


def test_a_lower_count_removes_the_surplus_without_prune() -> None:
    file = organisation(agents=[{"name": "w", "type": "worker", "count": 2}])
    found = plan(file, state(running("w-1"), running("w-2"), running("w-3")))
    assert actions(found) == [("remove", "agent", "w-3")]


def test_agents_the_file_omits_are_reported_unless_pruning() -> None:
    file = organisation(agents=[{"name": "w", "type": "worker"}])
    now = state(running("w"), running("stray"), running(None))
    assert actions(plan(file, now)) == [("unlisted", "agent", "stray")]
    assert plan(file, now).changes == []
    assert actions(plan(file, now, prune=True)) == [("remove", "agent", "stray")]


def test_identity_and_budget_are_set_where_they_differ() -> None:
    identity = {"purpose": "serve", "values": ["care"]}
    budget = {"concurrency_slots": 8, "llm_tokens_per_min": 0, "memory_mb": 512}
    file = organisation(identity=identity, budget=budget)
    now = State(
        systems={"root": RunningSystem("root", identity=None, budget={**budget, "memory_mb": 256})}
    )
    found = plan(file, now)
    assert actions(found) == [("create", "identity", "identity"), ("update", "budget", "budget")]
    assert found.steps[0].body == {**identity, "constraints": []}
    assert found.steps[1].detail == "memory_mb 256 -> 512"
    same = State(
        systems={
            "root": RunningSystem("root", identity={**identity, "constraints": []}, budget=budget)
        }
    )
    assert plan(file, same).steps == ()


def test_a_new_meta_system_is_created_before_its_agents() -> None:
    child = {
        "name": "logistics",
        "identity": {"purpose": "move things"},
        "budget": {"concurrency_slots": 4, "llm_tokens_per_min": 0, "memory_mb": 128},
        "agents": [{"name": "mover", "type": "worker"}],
    }
    found = plan(organisation(meta_systems=[child]), state())
    assert actions(found) == [("create", "meta_system", "logistics"), ("create", "agent", "mover")]
    assert [s.vsm_id for s in found.steps] == ["root/logistics", "root/logistics"]
    assert found.steps[0].body["purpose"] == "move things"
    assert found.steps[0].body["budget"]["memory_mb"] == 128


def test_a_meta_system_the_file_omits_is_retired_leaves_first_only_when_pruning() -> None:
    grandchild = RunningSystem("root/a/b", agents=(running("x"),))
    child = RunningSystem("root/a", children=("root/a/b",))
    now = state(a=child, b=grandchild)
    assert actions(plan(organisation(), now)) == [("unlisted", "meta_system", "a")]
    pruned = plan(organisation(), now, prune=True)
    assert [(s.action, s.kind, s.vsm_id) for s in pruned.steps] == [
        ("remove", "agent", "root/a/b"),
        ("remove", "meta_system", "root/a/b"),
        ("remove", "meta_system", "root/a"),
    ]


RULE = {"name": "hot", "when": "cpu > 0.8 for 30s", "then": "pain 0.7"}


def test_s4_rules_are_set_where_they_differ_and_left_alone_when_not_declared() -> None:
    declared = organisation(rules=[RULE])
    assert actions(plan(declared, state())) == [("create", "rules", "rules")]
    step = plan(declared, state()).steps[0]
    assert step.body == {"rules": [RULE]}
    assert step.detail == "S4 rules: hot"
    same = State(systems={"root": RunningSystem("root", rules=[RULE])}, agent_types=TYPES)
    assert plan(declared, same).steps == ()
    changed = {**RULE, "then": "pain 0.9"}
    assert actions(plan(organisation(rules=[changed]), same)) == [("update", "rules", "rules")]
    assert actions(plan(organisation(rules=[]), same)) == [("update", "rules", "rules")]
    assert plan(organisation(), same).steps == ()  # no `rules:` in the file: none touched


def test_a_new_meta_systems_rules_follow_its_creation() -> None:
    child = {
        "name": "logistics",
        "identity": {"purpose": "move things"},
        "budget": {"concurrency_slots": 1, "llm_tokens_per_min": 0, "memory_mb": 1},
        "rules": [RULE],
    }
    found = plan(organisation(meta_systems=[child]), state())
    assert [(s.action, s.kind, s.vsm_id) for s in found.steps] == [
        ("create", "meta_system", "root/logistics"),
        ("create", "rules", "root/logistics"),
    ]
