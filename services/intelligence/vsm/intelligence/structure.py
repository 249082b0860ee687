"""Variety overload grows structure: S4 sees a viable system's variety exceed its capacity
for a sustained window and proposes a transformational adaptation that hands the part of the
work that overloads it (an agent type) to a new child viable system.

Capacity is what `meta_system_need` scores: the need's score at or above its threshold is
variety beyond what one level absorbs. A single spike changes nothing: the overload must hold
for `sustain_s` (every scan in between above the threshold). The part named is the agent type
whose events fill most of the window (the results and reports of its agents). One proposal per
episode: the next waits until the variety has fallen below capacity again. A system never
hands down a part its own name already carries (a child grown for `worker` does not grow
`worker` again: S5's tree would refuse the name as cyclic). S5 decides; S5 spawns the child
and moves the work.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

from vsm.contract.adaptation import AdaptationProposal
from vsm.contract.intelligence import MetaSystemNeed
from vsm.contract.policy import AdaptationPolicy
from vsm.intelligence.proposals import NAME
from vsm.intelligence.variety import EventWindow


@dataclass(frozen=True)
class StructureParams:
    sustain_s: float = 120.0
    """How long variety must stay beyond capacity before S4 proposes a change of structure."""
    min_share: float = 0.3
    """The busiest agent type must carry at least this share of the window's events."""


@dataclass
class Overload:
    """One system's overload episode as S4 follows it."""

    params: StructureParams = field(default_factory=StructureParams)
    since: float | None = None
    proposed: bool = False

    def read(self, need: MetaSystemNeed, part: tuple[str, float] | None, now: float) -> bool:
        """Whether to propose now: beyond capacity for `sustain_s`, a part to name, and no
        proposal yet this episode."""
        if not need.recommended:
            self.since, self.proposed = None, False
            return False
        self.since = now if self.since is None else self.since
        if self.proposed or now - self.since < self.params.sustain_s or part is None:
            return False
        if part[1] < self.params.min_share:
            return False
        self.proposed = True
        return True


SEGMENT = re.compile(r"[^a-z0-9-]+")


def segment(agent_type: str) -> str:
    """The name a child grown for `agent_type` gets (S3 names the spawn request so)."""
    return SEGMENT.sub("-", agent_type.lower()).strip("-")


def busiest_part(window: EventWindow, vsm_id: str) -> tuple[str, float] | None:
    """The agent type whose events fill most of the window, and its share of them (none
    when its child's name would repeat a segment of `vsm_id`)."""
    parts: Counter[str] = Counter()
    for e in window.events:
        if e.part:
            parts[e.part] += e.count
    total = sum(e.count for e in window.events)
    if not parts or not total:
        return None
    name, count = parts.most_common(1)[0]
    if segment(name) in vsm_id.split("/"):
        return None
    return name, count / total


def proposal(
    vsm_id: str, need: MetaSystemNeed, part: tuple[str, float], held_s: float
) -> AdaptationProposal:
    """The transformational proposal: a child viable system takes the agent type over."""
    agent_type, share = part
    why = (
        f"meta-system need {need.score:.2f} >= {need.threshold:.2f} for {held_s:.0f}s: the "
        f"variety of {vsm_id} exceeds what it absorbs; {agent_type} work carries "
        f"{share:.0%} of it: hand {agent_type} to a child viable system"
    )
    named = [t for t in need.variety.top_types if NAME.fullmatch(t)][:5]
    policy = AdaptationPolicy(
        policy_type="adaptation",
        mode="transformational",
        actions=[
            f"S5: spawn a child viable system for the {agent_type} work of {vsm_id}",
            f"S1/S2: move the {agent_type} agents and lane to the child",
        ],
        rationale=why[:1024],
        review_after_s=3600,
        overloading=named,
        delegate=[agent_type],
    )
    return AdaptationProposal(
        proposal_id=str(uuid.uuid4()),
        kind="transformational",
        rationale=why,
        policy_type="adaptation",
        policy=policy.model_dump(mode="json"),
        confidence=need.confidence,
        evidence={
            "agent_type": agent_type,
            "share": round(share, 4),
            "meta_system_need": {"score": need.score, "factors": need.factors},
            "variety": need.variety.model_dump(),
        },
    )
