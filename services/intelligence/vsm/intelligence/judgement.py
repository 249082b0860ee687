"""The rules of one viable system's S4 and what their firings say, over plain data.

Two rule sets are judged over every fact the system sees: the standing rules of the
operator's settings (`S4_RULES`, the same for every system) and the system's own, declared
in its organisation file (replaced as a whole by `vsm apply`). Each firing becomes one
message: pain or pleasure on `vsm.algedonic`, an `Observation` S4 makes of its own
environment, or an `IntelligenceAlert` of kind `rule`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.intelligence import IntelligenceAlert, Observation
from vsm.contract.rules import Fact, Firing, Limits, Rule, RuleBook, RuleDeclaration

Said = AlgedonicSignal | Observation | IntelligenceAlert
ORIGIN = "intelligence/rule"


@dataclass
class Judgement:
    limits: Limits = field(default_factory=Limits)
    standing: RuleBook = field(default_factory=lambda: RuleBook([]))
    declared: list[RuleDeclaration] = field(default_factory=list)
    own: RuleBook = field(default_factory=lambda: RuleBook([]))
    firings: int = 0

    def adopt(self, declared: Sequence[RuleDeclaration], compiled: Sequence[Rule]) -> None:
        """The system's own rules, replaced as a whole (their memory starts afresh)."""
        self.declared = list(declared)
        self.own = RuleBook(compiled, self.limits)

    def observe(self, fact: Fact) -> list[Firing]:
        return self.standing.observe(fact) + self.own.observe(fact)

    def tick(self, now: float) -> list[Firing]:
        return self.standing.tick(now) + self.own.tick(now)


def said(firing: Firing, vsm_id: str, episode: int) -> Said:
    """The message a firing sends, its evidence attached."""
    rule, outcome = firing.rule, firing.rule.outcome
    evidence = {k: v for k, v in firing.evidence.items() if v is not None}
    context: dict[str, object] = {"rule": rule.name, "when": rule.text[:512], **evidence}
    if firing.group:
        context["group"] = firing.group
    if outcome.kind in ("pain", "pleasure"):
        return AlgedonicSignal(
            kind=outcome.kind,
            intensity=outcome.intensity,
            origin=f"{ORIGIN}/{rule.name}",
            reason=rule.name,
            episode=f"s4:{rule.name}:{episode}",
            context=context,
        )
    if outcome.kind == "observe":
        return Observation(
            source=f"rule/{rule.name}"[:64],
            event_type=f"rule.{rule.name}"[:64],
            attributes=context,
        )
    group = f" for {firing.group}" if firing.group else ""
    return IntelligenceAlert(
        alert_id=str(uuid.uuid4()),
        severity=outcome.severity,
        kind="rule",
        summary=f"rule {rule.name} holds in {vsm_id}{group}: {rule.text}"[:1024],
        source=f"{ORIGIN}/{rule.name}",
        evidence=context,
        detected_at=datetime.fromtimestamp(firing.at, UTC),
    )
