"""What the running system holds now, read through the REST API for the plan to compare.

Only what a plan needs is read: each declared system that exists (identity, budget and S4
rules when the file declares them, agents, children), and every existing child below it, so that
`--prune` can retire what the file no longer names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vsm.cli.errors import Refused
from vsm.cli.gateway import Gateway
from vsm.cli.organisation.model import Declared, Organisation


@dataclass(frozen=True)
class RunningAgent:
    agent_id: str
    name: str | None
    type: str
    config: dict[str, Any]


@dataclass(frozen=True)
class RunningSystem:
    vsm_id: str
    identity: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    agents: tuple[RunningAgent, ...] = ()
    children: tuple[str, ...] = ()
    rules: list[dict[str, Any]] | None = None
    """S4's own rules for the system, when the file declares some."""


@dataclass(frozen=True)
class State:
    systems: dict[str, RunningSystem] = field(default_factory=dict)
    """By `vsm_id`; a declared system missing here does not exist yet."""
    agent_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Agent type -> its config's JSON schema (for the defaults the registry fills in)."""


def identity_of(gateway: Gateway, vsm_id: str) -> dict[str, Any] | None:
    try:
        record = gateway.get("/identity", vsm_id=vsm_id)
    except Refused as refused:
        if refused.status == 404 and not refused.no_such_route:
            return None
        raise
    return {k: v for k, v in record["policy"].items() if k != "policy_type"}


def children_of(gateway: Gateway, vsm_id: str) -> tuple[str, ...]:
    found = gateway.get("/meta-systems", vsm_id=vsm_id)
    return tuple(c if isinstance(c, str) else c["vsm_id"] for c in found["children"])


def observe(gateway: Gateway, organisation: Organisation) -> State:
    running = gateway.get("/agents")
    types = {t["agent_type"]: t["config_schema"] for t in gateway.get("/agent-types")}
    state = State(agent_types=types)
    _read(gateway, organisation, organisation.vsm_id, running, state)
    return state


def _read(
    gateway: Gateway,
    declared: Declared | None,
    vsm_id: str,
    running: list[dict[str, Any]],
    state: State,
) -> None:
    identity = budget = None
    if declared is not None and declared.identity is not None:
        identity = identity_of(gateway, vsm_id)
    if declared is not None and declared.budget is not None:
        budget = gateway.get("/system/3", vsm_id=vsm_id)["budget"]
    children = children_of(gateway, vsm_id)
    rules = None
    if declared is not None and declared.rules is not None:
        rules = gateway.get("/system/4", vsm_id=vsm_id)["rules"]
    state.systems[vsm_id] = RunningSystem(
        vsm_id=vsm_id,
        identity=identity,
        budget=budget,
        agents=tuple(
            RunningAgent(a["agent_id"], a.get("name"), a["agent_type"], a.get("config", {}))
            for a in running
            if a.get("vsm_id", "root") == vsm_id
        ),
        children=children,
        rules=rules,
    )
    declared_children = {c.name: c for c in declared.meta_systems} if declared else {}
    for child in children:
        segment = child.rsplit("/", 1)[-1]
        _read(gateway, declared_children.get(segment), child, running, state)
