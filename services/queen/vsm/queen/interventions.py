"""Interventions: what S5 does about an episode of pain, and when it escalates.

An intervention is opened with its episode and resolved when the episode closes. Until
then, every `deadline_s` without resolution escalates one level (to the parent viable
system, when there is one, and to operators), up to `max_levels`; an operator's
acknowledgement stops further escalation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from vsm.contract.system5 import InterventionState
from vsm.queen.algedonic import Episode

Status = Literal["open", "resolved", "escalated", "acknowledged"]
KEEP_CLOSED = 50


@dataclass(frozen=True)
class EscalationRules:
    deadline_s: float = 120.0
    max_levels: int = 3


@dataclass
class Intervention:
    vsm_id: str
    episode: Episode
    cause: Any
    """The envelope of the signal that opened it: the head of every message it causes."""
    id: str = field(default_factory=lambda: f"iv-{uuid.uuid4().hex[:12]}")
    status: Status = "open"
    escalation_level: int = 0
    last_escalated_at: datetime | None = None
    alert_ids: list[str] = field(default_factory=list)
    policy_type: str | None = None
    policy_version: int | None = None
    opened: Any = None
    """The `InterventionOpened` envelope: the cause of the policy it applies."""
    resolved: Any = None
    """The `InterventionResolved` envelope, once published."""
    throttled: str | None = None
    """The target whose throttle is to be lifted once the episode is over and it is healthy."""

    @property
    def reason(self) -> str:
        common = self.episode.reasons.most_common(1)
        return common[0][0] if common else self.episode.trigger

    @property
    def origin(self) -> str | None:
        common = self.episode.origins.most_common(1)
        return common[0][0] if common else None

    @property
    def unresolved(self) -> bool:
        return self.status in ("open", "escalated")

    def state(self) -> InterventionState:
        return InterventionState(
            intervention_id=self.id,
            vsm_id=self.vsm_id,
            trigger=self.episode.trigger,
            opened_at=self.episode.opened_at,
            status=self.status,
            escalation_level=self.escalation_level,
            policy_type=self.policy_type,
            policy_version=self.policy_version,
            causation=list(self.episode.causes),
            alert_ids=list(self.alert_ids),
            resolved_at=self.resolved.time if self.resolved is not None else None,
            opened_by=self.cause.id if self.cause is not None else None,
        )


def parent_of(vsm_id: str) -> str | None:
    """`root/a/b` -> `root/a`; the root has no parent."""
    head, _, _ = vsm_id.rpartition("/")
    return head or None


def due(intervention: Intervention, now: datetime, rules: EscalationRules) -> bool:
    """Whether the intervention has waited a whole deadline since it opened or last escalated."""
    if not intervention.unresolved or intervention.escalation_level >= rules.max_levels:
        return False
    since = intervention.last_escalated_at or intervention.episode.opened_at
    return (now - since).total_seconds() >= rules.deadline_s


def escalate(intervention: Intervention, now: datetime) -> int:
    """Mark one more escalation; its level (1 for the first)."""
    intervention.escalation_level += 1
    intervention.last_escalated_at = now
    intervention.status = "escalated"
    return intervention.escalation_level


def severity_of(level: int) -> Literal["warning", "critical"]:
    return "warning" if level == 1 else "critical"


def acknowledge(interventions: dict[str, Intervention], alert_id: str) -> Intervention | None:
    """The intervention the alert was about, now acknowledged (None for an unknown alert)."""
    for intervention in interventions.values():
        if alert_id in intervention.alert_ids:
            if intervention.unresolved:
                intervention.status = "acknowledged"
            return intervention
    return None


def forget_closed(interventions: dict[str, Intervention]) -> None:
    """Keep the open ones and the latest closed ones (for the state view), drop the rest."""
    closed = [i for i in interventions.values() if not i.unresolved]
    for old in closed[:-KEEP_CLOSED]:
        del interventions[old.id]
