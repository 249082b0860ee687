"""The agent registry as plain data: events in, the agents that exist out.

Every replica holds one, built by applying the registry log in order; applying the same
event twice changes nothing, so a replay after a reconnect is harmless.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from vsm.contract.errors import Refused
from vsm.contract.message import Message
from vsm.contract.operations import (
    AgentCrashed,
    AgentInfo,
    AgentRehomed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
)
from vsm.kit.egress import Blocked, EgressPolicy
from vsm.operations.agents.base import AgentConfig, AgentType
from vsm.operations.agents.catalog import AGENT_TYPES

NO_EGRESS = EgressPolicy()


def validate_config(agent_type: str, config: dict[str, Any]) -> AgentConfig:
    kind = AGENT_TYPES.get(agent_type)
    if kind is None:
        raise Refused(
            "invalid_agent_type",
            f"unknown agent type {agent_type!r}",
            {"field": "type", "known": sorted(AGENT_TYPES)},
        )
    try:
        return kind.config_model.model_validate(config)
    except ValidationError as error:
        problems = [
            {
                "field": ".".join(["config", *map(str, p["loc"])]),
                "message": p["msg"],
                **{k: v for k, v in p.get("ctx", {}).items() if k in ("line", "column")},
            }
            for p in error.errors(include_url=False, include_input=False)
        ]
        raise invalid(problems) from error


def check_destinations(kind: AgentType, config: AgentConfig, egress: EgressPolicy) -> None:
    """Every URL the config would call lies within the operator's egress policy; else
    `invalid_config` naming each field, its code `destination_not_allowed`."""
    problems = []
    for name, url in kind.destinations(config):
        try:
            egress.permit(url)
        except Blocked as blocked:
            problems.append(
                {"field": name, "message": blocked.message, "code": "destination_not_allowed"}
            )
    if problems:
        raise invalid(problems)


def invalid(problems: list[dict[str, Any]]) -> Refused:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return Refused("invalid_config", summary, {"errors": problems})


def new_agent(
    agent_type: str,
    config: dict[str, Any],
    now: datetime,
    name: str | None = None,
    vsm_id: str = "root",
    *,
    egress: EgressPolicy = NO_EGRESS,
) -> AgentInfo:
    """A fresh agent of `agent_type` with its config validated (and defaults filled in),
    calling only destinations within `egress`."""
    valid = validate_config(agent_type, config)
    check_destinations(AGENT_TYPES[agent_type], valid, egress)
    return AgentInfo(
        agent_id=f"{agent_type.replace('_', '-')}-{secrets.token_hex(6)}",
        agent_type=agent_type,
        name=name,
        vsm_id=vsm_id,
        config=valid.model_dump(mode="json"),
        capabilities=list(AGENT_TYPES[agent_type].capabilities),
        allocation=valid.allocation,
        max_allocation=valid.max_allocation,
        spawned_at=now,
    )


APPLIED_KEPT = 65_536
"""Ids of the latest events a registry remembers having applied. A log entry comes back at
most once after this replica applied it (its own event, applied before the stream returns
it) and a restart replays only what follows its snapshot (whose own ids it restores), so a
window of recent ids deduplicates as well as all of them would, in bounded memory."""

TERMINATED_KEPT = 1000
"""Terminated agents a registry still shows (`GET` answers `terminated`, listings with
`include_terminated`), the latest; older ones are forgotten (snapshots never held them)."""


@dataclass
class Registry:
    agents: dict[str, AgentInfo] = field(default_factory=dict)
    applied: dict[str, None] = field(default_factory=dict)
    """Ids of the latest events applied (`APPLIED_KEPT`, oldest first): a replayed event
    changes nothing, even for an agent forgotten since."""
    applied_kept: int = APPLIED_KEPT
    live: int = 0
    """How many of the agents are running."""
    terminated_kept: int = TERMINATED_KEPT
    ended: deque[str] = field(default_factory=deque)
    """The terminated agents still shown, oldest first."""

    def restore(self, running: list[AgentInfo], applied: list[str]) -> None:
        """The running agents of a snapshot, and the ids of the events they include beyond
        the entry it covers."""
        self.agents.clear()  # the same map: whoever holds it sees the restored agents
        self.agents.update((agent.agent_id, agent) for agent in running)
        self.applied = dict.fromkeys(applied)
        self.ended.clear()
        self.live = sum(1 for agent in running if agent.state == "running")

    def apply(self, event_id: str, event: Message) -> list[AgentInfo]:
        """Apply one event (a batch: each of its agents in turn); the agents it changed, as
        they now stand (none: it changed nothing, e.g. applied before)."""
        if event_id in self.applied:
            return []
        self.applied[event_id] = None
        if len(self.applied) > self.applied_kept:
            del self.applied[next(iter(self.applied))]
        if isinstance(event, AgentSpawned | AgentsSpawned):
            born = event.agents if isinstance(event, AgentsSpawned) else [event.agent]
            return [a for a in born if self._spawned(a)]
        if isinstance(event, AgentTerminated | AgentsTerminated):
            ids = event.agent_ids if isinstance(event, AgentsTerminated) else [event.agent_id]
            ended = (self._terminated(i, event.terminated_at) for i in ids)
            return [a for a in ended if a is not None]
        named = event.agent if isinstance(event, AgentRehomed) else event
        known = self.agents.get(str(getattr(named, "agent_id", "")))
        if known is None:
            return []
        if isinstance(event, AgentCrashed):
            changed = known.model_copy(update={"crashes": known.crashes + 1})
        elif isinstance(event, AgentRehomed) and known.state == "running":
            changed = known.model_copy(update={"vsm_id": event.agent.vsm_id})
        else:
            return []
        self.agents[known.agent_id] = changed
        return [changed]

    def _spawned(self, agent: AgentInfo) -> bool:
        if agent.agent_id in self.agents:
            return False
        self.agents[agent.agent_id] = agent
        self.live += agent.state == "running"
        return True

    def _terminated(self, agent_id: str, at: datetime) -> AgentInfo | None:
        known = self.agents.get(agent_id)
        if known is None or known.state != "running":
            return None
        changed = known.model_copy(update={"state": "terminated", "terminated_at": at})
        self.live -= 1
        self.agents[agent_id] = changed
        self._forget_the_oldest_ended(agent_id)
        return changed

    def _forget_the_oldest_ended(self, agent_id: str) -> None:
        self.ended.append(agent_id)
        while len(self.ended) > self.terminated_kept:
            self.agents.pop(self.ended.popleft(), None)

    def get(self, agent_id: str) -> AgentInfo | None:
        """The agent of that id, whatever its state, or None."""
        return self.agents.get(agent_id)

    def find(self, agent_id: str) -> AgentInfo:
        """A running agent, or `agent_not_found`."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.state != "running":
            raise Refused(
                "agent_not_found",
                f"no running agent {agent_id!r}"
                + (" (it was terminated)" if agent is not None else ""),
                {"agent_id": agent_id},
            )
        return agent

    def find_each(self, agent_ids: Iterable[str]) -> list[AgentInfo | Refused]:
        """Per id, in order, the running agent (as `find`), or `agent_not_found`: an id
        named before it in `agent_ids` is refused the second time, so no agent is retired
        twice by one request."""
        seen: set[str] = set()
        found: list[AgentInfo | Refused] = []
        for agent_id in agent_ids:
            if agent_id in seen:
                found.append(
                    Refused(
                        "agent_not_found",
                        f"agent {agent_id!r} is named earlier in this request",
                        {"agent_id": agent_id},
                    )
                )
                continue
            seen.add(agent_id)
            try:
                found.append(self.find(agent_id))
            except Refused as refused:
                found.append(refused)
        return found

    def of_type(self, vsm_id: str, agent_type: str) -> list[AgentInfo]:
        """The running agents of `agent_type` in `vsm_id`."""
        return [
            a
            for a in self.agents.values()
            if (a.state, a.vsm_id, a.agent_type) == ("running", vsm_id, agent_type)
        ]

    def listing(self, agent_type: str | None, include_terminated: bool) -> list[AgentInfo]:
        return sorted(
            (
                a
                for a in self.agents.values()
                if (include_terminated or a.state == "running")
                and (agent_type is None or a.agent_type == agent_type)
            ),
            key=lambda a: (a.spawned_at, a.agent_id),
        )

    def page(
        self, agent_type: str | None, include_terminated: bool, offset: int, limit: int | None
    ) -> tuple[list[AgentInfo], int]:
        """The agents `offset` to `offset + limit` of the listing, and how many it holds."""
        listed = self.listing(agent_type, include_terminated)
        end = None if limit is None else offset + limit
        return listed[offset:end], len(listed)

    def running(self) -> list[AgentInfo]:
        return self.listing(None, include_terminated=False)
