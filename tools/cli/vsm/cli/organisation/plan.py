"""The plan: what `vsm apply` would change, as a pure function of the file and the state.

Per system: removals first (they free budget), then identity and budget where they
differ, then replaced and new agents, then its S4 rules; then each child the same way, a
new child created with its identity and budget before its agents. What the file does not
name is only reported unless pruning (see roster.py for the agents).
"""

from __future__ import annotations

from typing import Any

from vsm.cli.organisation.model import Declared, MetaSystem, Organisation
from vsm.cli.organisation.roster import roster
from vsm.cli.organisation.state import RunningSystem, State
from vsm.cli.organisation.steps import Action, Plan, Step


def plan(organisation: Organisation, state: State, *, prune: bool = False) -> Plan:
    steps: list[Step] = []
    _system(organisation, organisation.vsm_id, state, prune, steps)
    return Plan(tuple(steps))


def _system(declared: Declared, vsm_id: str, state: State, prune: bool, steps: list[Step]) -> None:
    now = state.systems.get(vsm_id)
    if now is None and isinstance(declared, MetaSystem):
        body = spawn_body(declared)
        steps.append(Step("create", "meta_system", vsm_id, declared.name, body=body))
    gone, changed = roster(declared.agents, now or RunningSystem(vsm_id), state, prune)
    steps += gone
    wanted = {f"{vsm_id}/{child.name}": child for child in declared.meta_systems}
    for child_id in now.children if now else ():
        if child_id not in wanted:
            steps += _retire(child_id, state) if prune else [unlisted(child_id)]
    if now is not None:
        steps += _identity_and_budget(declared, now)
    steps += changed
    steps += _rules(declared, now, vsm_id)
    for child_id, child in wanted.items():
        _system(child, child_id, state, prune, steps)


def spawn_body(child: MetaSystem) -> dict[str, Any]:
    identity = child.identity.model_dump(mode="json")
    return {"name": child.name, **identity, "budget": child.budget.model_dump(mode="json")}


def _identity_and_budget(declared: Declared, now: RunningSystem) -> list[Step]:
    steps = []
    if declared.identity is not None:
        wanted = declared.identity.model_dump(mode="json")
        have = now.identity or {}
        keys = [k for k, v in wanted.items() if have.get(k) != v]
        if now.identity is None:
            steps.append(Step("create", "identity", now.vsm_id, "identity", body=wanted))
        elif keys:
            detail = f"{', '.join(keys)} differ"
            steps.append(Step("update", "identity", now.vsm_id, "identity", detail, wanted))
    if declared.budget is not None:
        wanted = declared.budget.model_dump(mode="json")
        have = now.budget or {}
        changed = [f"{k} {have.get(k)} -> {v}" for k, v in wanted.items() if have.get(k) != v]
        if changed:
            detail = ", ".join(changed)
            steps.append(Step("update", "budget", now.vsm_id, "budget", detail, wanted))
    return steps


def _rules(declared: Declared, now: RunningSystem | None, vsm_id: str) -> list[Step]:
    """The system's own S4 rules, replaced as a whole when they differ from the running ones."""
    if declared.rules is None:
        return []
    wanted = [r.model_dump(mode="json") for r in declared.rules]
    have = (now.rules if now is not None else None) or []
    if wanted == have:
        return []
    names = ", ".join(r["name"] for r in wanted) or "none"
    action: Action = "create" if not have else "update"
    return [Step(action, "rules", vsm_id, "rules", f"S4 rules: {names}", {"rules": wanted})]


def unlisted(vsm_id: str) -> Step:
    return Step("unlisted", "meta_system", vsm_id, vsm_id.rsplit("/", 1)[-1], "not in the file")


def _retire(vsm_id: str, state: State) -> list[Step]:
    """A whole subtree, leaves first (a meta-system retires only once it has no children)."""
    now = state.systems.get(vsm_id, RunningSystem(vsm_id))
    steps = [s for child in now.children for s in _retire(child, state)]
    steps += [
        Step.on_agent("remove", vsm_id, agent, "its system retires", {})
        for agent in now.agents
        if agent.name is not None
    ]
    name = vsm_id.rsplit("/", 1)[-1]
    return [*steps, Step("remove", "meta_system", vsm_id, name, "not in the file")]
