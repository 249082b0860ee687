"""What an adaptation policy means in deeds: the steps S3 carries out, each with its owner.

  expansive        - `scale`: for each agent type, spawn agents (S1) up to the number asked
                     for, or retire the ones adaptation spawned down to it (never an agent
                     someone else declared: those are the operator's);
  incremental      - `capacity`: an agent type's (or agent's) slots become its base slots
                     times the factor (S3, within the budget's free slots);
  defensive        - `isolate`: S2 stops dispatching to the agent (S3 takes back its slots)
                     until a probe finds it healthy; `shed`: S2 holds a lane's work back;
  transformational - a meta-system (a child viable system) for the variety that overloads
                     this one: the spawn request, for S5 to decide on (`meta_system_request`),
                     named after the agent types to `delegate` to it when the policy names
                     some; a policy that only folds children back proposes nothing (S5 does).
A step that cannot be taken becomes a refusal with a stable reason; nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from vsm.contract.control import Resources
from vsm.contract.policy import AdaptationPolicy
from vsm.contract.recursion import SpawnMetaSystem

Action = Literal[
    "spawn", "retire", "isolate", "readmit", "shed", "resume", "reallocate", "meta_system"
]
Owner = Literal["S1", "S2", "S3", "S5"]
OWNER: dict[Action, Owner] = {
    "spawn": "S1",
    "retire": "S1",
    "isolate": "S2",
    "readmit": "S2",
    "shed": "S2",
    "resume": "S2",
    "reallocate": "S3",
    "meta_system": "S5",
}


@dataclass(frozen=True)
class Step:
    """One step to take: `count` agents to spawn, the `agent_ids` to retire, a factor."""

    action: Action
    target: str
    count: int = 0
    agent_ids: tuple[str, ...] = ()
    factor: float | None = None
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def owner(self) -> Owner:
        return OWNER[self.action]


@dataclass(frozen=True)
class Refusal:
    """A step that cannot be taken, and why (`reason` is a stable code)."""

    action: Action
    target: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Fleet:
    """The running agents of one viable system by type (spawn order), and which of them
    adaptation spawned (the only ones it may retire)."""

    running: dict[str, list[str]]
    adapted: frozenset[str] = frozenset()


def scale(policy: AdaptationPolicy, fleet: Fleet) -> tuple[list[Step], list[Refusal]]:
    steps: list[Step] = []
    refusals: list[Refusal] = []
    for agent_type, wanted in sorted(policy.scale.items()):
        running = fleet.running.get(agent_type, [])
        if wanted > len(running):
            steps.append(Step("spawn", agent_type, count=wanted - len(running)))
        elif wanted < len(running):
            excess = len(running) - wanted
            ours = [a for a in reversed(running) if a in fleet.adapted][:excess]
            if ours:
                steps.append(Step("retire", agent_type, count=len(ours), agent_ids=tuple(ours)))
            if len(ours) < excess:
                refusals.append(
                    Refusal(
                        "retire",
                        agent_type,
                        "not_adapted",
                        f"{excess - len(ours)} of the {agent_type} agents above {wanted} were "
                        "not spawned by adaptation; S3 retires only its own",
                    )
                )
    return steps, refusals


def plan(
    policy: AdaptationPolicy, fleet: Fleet, vsm_id: str, free: Resources
) -> tuple[list[Step], list[Refusal]]:
    """The policy's structured fields as steps (a policy of words only has none; a
    transformational one always proposes its meta-system)."""
    steps, refusals = scale(policy, fleet)
    steps += [Step("reallocate", t, factor=f) for t, f in sorted(policy.capacity.items())]
    steps += [Step("isolate", agent_id) for agent_id in policy.isolate]
    steps += [Step("shed", lane) for lane in policy.shed]
    if policy.mode == "transformational" and (policy.delegate or not policy.fold):
        request = meta_system_request(vsm_id, policy.delegate or policy.overloading, free)
        steps.append(Step("meta_system", request.name, request=request.model_dump(mode="json")))
    return steps, refusals


SEGMENT = re.compile(r"[^a-z0-9-]+")


def meta_system_request(
    vsm_id: str, overloading: list[str], free: Resources, share: float = 0.25
) -> SpawnMetaSystem:
    """The spawn request of a child viable system for the variety that overloads `vsm_id`:
    named after the agent type it takes over (or the busiest event type S4 saw), given
    `share` of the parent's free budget.
    A plain function, so the request can be routed through an approval before it is sent."""
    kinds = overloading[:5]
    head = SEGMENT.sub("-", (kinds[0] if kinds else "variety").lower()).strip("-")[:40]
    focus = ", ".join(kinds) or "the variety S4 measured"
    return SpawnMetaSystem(
        name=(head or "variety")[:40],
        purpose=f"absorb the variety that overloads {vsm_id}: {focus}"[:1024],
        budget=Resources(
            concurrency_slots=int(free.concurrency_slots * share),
            llm_tokens_per_min=int(free.llm_tokens_per_min * share),
            memory_mb=int(free.memory_mb * share),
        ),
    )
