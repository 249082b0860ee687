"""Which of the agents asked for may be spawned, as plain data: the quota and the names.

One spawn and a bulk spawn pass through the same rule, item by item in order: an item is
refused when its viable system already runs `AGENTS_PER_SYSTEM` agents (counting the ones
admitted before it and the ones still being spawned), when its name is taken there, or when
its type or config is invalid; a refused item leaves the others alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from vsm.contract.errors import Refused
from vsm.contract.operations import AgentInfo, SpawnAgent
from vsm.kit.egress import EgressPolicy
from vsm.operations.agents.catalog import AGENT_TYPES
from vsm.operations.offers import HostOffers, new_hosted_agent
from vsm.operations.registry import NO_EGRESS, new_agent

__all__ = ["admit", "name_taken", "quota_exceeded"]


def quota_exceeded(vsm_id: str, running: int, most: int) -> Refused:
    """A viable system runs at most `most` agents: one more is refused until one ends."""
    return Refused(
        "quota_exceeded",
        f"{vsm_id} already runs {running} agents, its quota (AGENTS_PER_SYSTEM: {most}); "
        "terminate one first",
        {"field": "vsm_id", "quota": "AGENTS_PER_SYSTEM", "limit": most},
    )


def name_taken(name: str, vsm_id: str, agent_id: str) -> Refused:
    """Names identify declared agents: two running agents of one system never share one."""
    return Refused(
        "name_taken",
        f"agent {agent_id} in {vsm_id} is already named {name!r}",
        {"field": "name", "agent_id": agent_id},
    )


def admit(
    items: Sequence[SpawnAgent],
    known: Iterable[AgentInfo],
    vsm_id: str,
    most: int,
    *,
    now: datetime,
    egress: EgressPolicy = NO_EGRESS,
    offers: HostOffers | None = None,
    monotonic: float = 0.0,
) -> list[AgentInfo | Refused]:
    """Per item, in order: the new agent (not yet spawned), or why it is refused.

    `known`: the agents that exist or are being spawned (any state, any system); `offers`:
    the types agent hosts offer (as of `monotonic`), besides the built-in ones.
    """
    mine = [a for a in known if a.state == "running" and a.vsm_id == vsm_id]
    running = len(mine)
    names = {a.name: a.agent_id for a in mine if a.name is not None}
    admitted: list[AgentInfo | Refused] = []
    for item in items:
        try:
            if running >= most:
                raise quota_exceeded(vsm_id, running, most)
            if item.name is not None and item.name in names:
                raise name_taken(item.name, vsm_id, names[item.name])
            hosted = (
                offers.find(item.agent_type, monotonic)
                if offers is not None and item.agent_type not in AGENT_TYPES
                else None
            )
            if hosted is not None and offers is not None:
                agent = new_hosted_agent(
                    hosted, offers, dict(item.config), now, name=item.name, vsm_id=vsm_id
                )
            else:
                agent = new_agent(
                    item.agent_type, dict(item.config), now, item.name, vsm_id, egress=egress
                )
        except Refused as refused:
            admitted.append(refused)
            continue
        running += 1
        if agent.name is not None:
            names[agent.name] = agent.agent_id
        admitted.append(agent)
    return admitted
