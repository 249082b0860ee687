"""A plan's steps: one change to one object (meta-system, identity, budget, agent, rules)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vsm.cli.organisation.state import RunningAgent

Action = Literal["create", "update", "replace", "remove", "unlisted"]
"""`unlisted`: not in the file and kept (reported only; `--prune` makes it `remove`)."""
Kind = Literal["meta_system", "identity", "budget", "agent", "rules"]


@dataclass(frozen=True)
class Step:
    action: Action
    kind: Kind
    vsm_id: str
    name: str
    detail: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None

    @classmethod
    def on_agent(
        cls, action: Action, vsm_id: str, agent: RunningAgent, detail: str, body: dict[str, Any]
    ) -> Step:
        """A step on a running agent (named: only named agents are ever changed)."""
        return cls(action, "agent", vsm_id, agent.name or "", detail, body, agent.agent_id)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "unlisted"]

    def count(self, action: Action) -> int:
        return sum(s.action == action for s in self.steps)
