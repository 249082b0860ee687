"""Everything S5 holds in memory, and the questions asked of it, over plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.system5 import AlgedonicState, System5State, Viability
from vsm.queen import algedonic, interventions
from vsm.queen.algedonic import Feeling, Thresholds
from vsm.queen.decisions import Situation
from vsm.queen.health import HealthBoard
from vsm.queen.interventions import EscalationRules, Intervention
from vsm.queen.policies import PolicyStore
from vsm.queen.viability import ViabilityInputs, viability


@dataclass
class System5:
    thresholds: Thresholds = field(default_factory=Thresholds)
    escalation: EscalationRules = field(default_factory=EscalationRules)
    freshness_s: float = 300.0
    viable_above: float = 0.6
    board: HealthBoard = field(default_factory=HealthBoard)
    store: PolicyStore = field(default_factory=PolicyStore)
    feelings: dict[str, Feeling] = field(default_factory=dict)
    interventions: dict[str, Intervention] = field(default_factory=dict)
    measured: dict[str, ViabilityInputs] = field(default_factory=dict)

    def feeling(self, vsm_id: str) -> Feeling:
        if vsm_id not in self.feelings:
            self.feelings[vsm_id] = Feeling(vsm_id=vsm_id, window=self.thresholds.window)
        return self.feelings[vsm_id]

    def inputs(self, vsm_id: str) -> ViabilityInputs:
        return self.measured.setdefault(vsm_id, ViabilityInputs())

    def felt(self, vsm_id: str) -> Feeling:
        """Read-only: the system's feeling, or a calm one that is not kept (a query about a
        system nothing was felt for creates no state)."""
        found = self.feelings.get(vsm_id)
        return found or Feeling(vsm_id=vsm_id, window=self.thresholds.window)

    def measures(self, vsm_id: str) -> ViabilityInputs:
        """Read-only: the system's viability inputs, or empty ones that are not kept."""
        return self.measured.get(vsm_id) or ViabilityInputs()

    def forget(self, vsm_id: str) -> None:
        """Drop a retired viable system's levels, measures and interventions (policies stay)."""
        self.feelings.pop(vsm_id, None)
        self.measured.pop(vsm_id, None)
        for intervention in [i for i in self.interventions.values() if i.vsm_id == vsm_id]:
            del self.interventions[intervention.id]

    def feel(self, envelope: Envelope[AlgedonicSignal], now: datetime) -> Intervention | None:
        """Take in a signal; the intervention it opens, if it opens an episode."""
        feeling = self.feeling(envelope.vsm_id)
        episode = algedonic.feel(feeling, envelope.data, envelope.id, now, self.thresholds)
        if episode is None:
            return None
        opened = Intervention(vsm_id=envelope.vsm_id, episode=episode, cause=envelope)
        self.interventions[opened.id] = opened
        return opened

    def withdraw(self, intervention: Intervention) -> None:
        """Forget an intervention that could not be carried out (its signal will come again)."""
        self.interventions.pop(intervention.id, None)
        algedonic.reopen(
            self.feeling(intervention.vsm_id), intervention.episode, intervention.cause.id
        )

    def settle(self, now: datetime) -> list[Intervention]:
        """Decay every level to `now`; the interventions whose episode has just closed."""
        resolved = []
        for feeling in self.feelings.values():
            closed = algedonic.subsided(feeling, now, self.thresholds)
            for intervention in self.interventions.values():
                if closed is not None and intervention.episode is closed:
                    intervention.status = "resolved"
                    resolved.append(intervention)
        interventions.forget_closed(self.interventions)
        return resolved

    def due(self, now: datetime) -> list[Intervention]:
        return [
            i for i in self.interventions.values() if interventions.due(i, now, self.escalation)
        ]

    def open_interventions(self, vsm_id: str) -> list[Intervention]:
        return [
            i for i in self.interventions.values() if i.vsm_id == vsm_id and i.status != "resolved"
        ]

    def viability(self, vsm_id: str, now: datetime) -> Viability:
        feeling = self.felt(vsm_id)
        algedonic.settle(feeling, now, self.thresholds.half_life_s)
        score = viability(
            self.measures(vsm_id),
            pain=feeling.pain,
            pleasure=feeling.pleasure,
            signals=feeling.signals,
            now=now,
            freshness_s=self.freshness_s,
        )
        viable = None if score.score is None else score.score >= self.viable_above
        return score.model_copy(update={"threshold": self.viable_above, "viable": viable})

    def algedonic_state(self, vsm_id: str, now: datetime) -> AlgedonicState:
        feeling = self.felt(vsm_id)
        algedonic.settle(feeling, now, self.thresholds.half_life_s)
        return AlgedonicState(
            vsm_id=vsm_id,
            pain=round(feeling.pain, 6),
            pleasure=round(feeling.pleasure, 6),
            signals=feeling.signals,
            episode_open=feeling.episode is not None,
            intervene_at=self.thresholds.intervene_at,
            resolve_below=self.thresholds.resolve_below,
        )

    def situation(self, vsm_id: str, now: datetime) -> Situation:
        feeling = self.felt(vsm_id)
        score = self.viability(vsm_id, now)
        readiness = self.measures(vsm_id).readiness
        open_ones = self.open_interventions(vsm_id)
        return Situation(
            pain=feeling.pain,
            pleasure=feeling.pleasure,
            threshold=self.thresholds.intervene_at,
            resolve_below=self.thresholds.resolve_below,
            viability=score.score,
            readiness=readiness.value if readiness else None,
            open_interventions=len(open_ones),
            overdue_interventions=sum(
                interventions.due(i, now, self.escalation) for i in open_ones
            ),
            has_identity=self.store.identity(vsm_id) is not None,
        )

    def state(self, vsm_id: str, now: datetime, llm: str) -> System5State:
        identity = self.store.identity(vsm_id)
        identity_view: dict[str, Any] | None = (
            identity.model_dump(mode="json") if identity is not None else None
        )
        return System5State(
            vsm_id=vsm_id,
            viability=self.viability(vsm_id, now),
            algedonic=self.algedonic_state(vsm_id, now),
            interventions=[i.state() for i in self.interventions.values() if i.vsm_id == vsm_id],
            policies={r.policy_type: r.version for r in self.store.latest_of(vsm_id)},
            identity=identity_view,
            llm=llm,
        )
