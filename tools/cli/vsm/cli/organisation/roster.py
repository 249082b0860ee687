"""The agents of one viable system: declared ones matched by name with the running ones.

`count: N` of name `w` declares `w-1` .. `w-N`; a running `w-K` beyond the count, or a
plain `w` after the count grew, belongs to that declaration and is removed without
`--prune`. A running agent of another name is `unlisted` (removed only when pruning); one
without a name is never touched.
"""

from __future__ import annotations

import re
from typing import Any

from vsm.cli.organisation.configs import differing
from vsm.cli.organisation.model import Agent
from vsm.cli.organisation.state import RunningSystem, State
from vsm.cli.organisation.steps import Action, Step


def roster(
    declared: list[Agent], now: RunningSystem, state: State, prune: bool
) -> tuple[list[Step], list[Step]]:
    """(removals, then replacements and creations) that make `now` match `declared`."""
    wanted = {name: agent for agent in declared for name in agent.names()}
    counted = re.compile("|".join(re.escape(a.name) + r"(-\d+)?" for a in declared) or "(?!)")
    gone, replaced = [], []
    for agent in sorted(now.agents, key=lambda a: a.name or ""):
        if agent.name is None:
            continue
        target = wanted.pop(agent.name, None)
        if target is None and counted.fullmatch(agent.name):
            detail = "no longer among the declared names (count changed)"
            gone.append(Step.on_agent("remove", now.vsm_id, agent, detail, {}))
        elif target is None:
            action: Action = "remove" if prune else "unlisted"
            gone.append(Step.on_agent(action, now.vsm_id, agent, "not in the file", {}))
        elif (why := differs(target, agent.type, agent.config, state)) is not None:
            body = spawn_body(target, agent.name)
            replaced.append(Step.on_agent("replace", now.vsm_id, agent, why, body))
    created = [
        Step("create", "agent", now.vsm_id, name, target.type, spawn_body(target, name))
        for name, target in wanted.items()
    ]
    return gone, [*replaced, *created]


def spawn_body(agent: Agent, name: str) -> dict[str, Any]:
    return {"type": agent.type, "config": agent.config, "name": name}


def differs(target: Agent, running_type: str, config: dict[str, Any], state: State) -> str | None:
    """Why the running agent is not what the file declares, or None when it is."""
    if target.type != running_type:
        return f"type {running_type} -> {target.type}"
    keys = differing(target.config, config, state.agent_types.get(target.type, {}))
    return f"config differs: {', '.join(keys)}" if keys else None
