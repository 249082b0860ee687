"""Expansive adaptation: S4 sees sustained queueing on an agent type and proposes more
agents of it; once the pressure is gone, it proposes the number it started from again.

An agent type is under pressure while the work waiting for it exceeds
`queued_per_agent` x max(1, running agents) (S2's `QueuePressure`). Pressure held for
`sustain_s` asks for running + ceil(queued / queued_per_agent) agents, at most `max_step`
more at once; the next step waits another `sustain_s`. No pressure and nothing waiting for
`calm_s` after a scale-up asks for the baseline (the count before the first step) again.
Each answer is `(agent_type, agents wanted, why)`; S5 decides, S3 carries it out.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

from vsm.contract.adaptation import AdaptationProposal
from vsm.contract.coordination import QueuePressure, TypePressure
from vsm.contract.policy import AdaptationPolicy


@dataclass(frozen=True)
class ScaleParams:
    queued_per_agent: float = 4.0
    sustain_s: float = 30.0
    calm_s: float = 60.0
    max_step: int = 4


@dataclass
class TypeScale:
    pressed_since: float | None = None
    calm_since: float | None = None
    baseline: int | None = None


@dataclass(frozen=True)
class Rescale:
    agent_type: str
    agents: int
    why: str
    pressure: TypePressure


@dataclass
class Scaling:
    params: ScaleParams = field(default_factory=ScaleParams)
    types: dict[str, TypeScale] = field(default_factory=dict)

    def read(self, reading: QueuePressure, now: float) -> list[Rescale]:
        found = []
        for agent_type, pressure in sorted(reading.types.items()):
            state = self.types.setdefault(agent_type, TypeScale())
            step = self._step(agent_type, pressure, state, now)
            if step is not None:
                found.append(step)
        return found

    def _step(
        self, agent_type: str, p: TypePressure, state: TypeScale, now: float
    ) -> Rescale | None:
        limit = self.params.queued_per_agent * max(1, p.agents)
        if p.queued > limit:
            state.calm_since = None
            state.pressed_since = state.pressed_since if state.pressed_since is not None else now
            if now - state.pressed_since < self.params.sustain_s:
                return None
            state.pressed_since = now
            state.baseline = p.agents if state.baseline is None else state.baseline
            more = min(self.params.max_step, math.ceil(p.queued / self.params.queued_per_agent))
            why = (
                f"{p.queued} items waited for {p.agents} {agent_type} agent(s) (over "
                f"{limit:g}) for {self.params.sustain_s:g}s: scale {agent_type} up to "
                f"{p.agents + more}"
            )
            return Rescale(agent_type, p.agents + more, why, p)
        state.pressed_since = None
        if state.baseline is None or p.agents <= state.baseline or p.queued or p.in_flight:
            state.calm_since = None
            return None
        state.calm_since = state.calm_since if state.calm_since is not None else now
        if now - state.calm_since < self.params.calm_s:
            return None
        baseline, state.baseline, state.calm_since = state.baseline, None, None
        why = (
            f"nothing waited for {agent_type} for {self.params.calm_s:g}s: scale it back "
            f"down from {p.agents} to {baseline}"
        )
        return Rescale(agent_type, baseline, why, p)


def proposal(rescale: Rescale) -> AdaptationProposal:
    """The expansive proposal S5 decides on: an `adaptation` policy with its `scale`."""
    policy = AdaptationPolicy(
        policy_type="adaptation",
        mode="expansive",
        actions=[f"S1: run {rescale.agents} {rescale.agent_type} agent(s)"],
        rationale=rescale.why[:1024],
        scale={rescale.agent_type: rescale.agents},
    )
    return AdaptationProposal(
        proposal_id=str(uuid.uuid4()),
        kind="expansive",
        rationale=rescale.why,
        policy_type="adaptation",
        policy=policy.model_dump(mode="json"),
        confidence=0.8,
        evidence={"agent_type": rescale.agent_type, **rescale.pressure.model_dump()},
    )
