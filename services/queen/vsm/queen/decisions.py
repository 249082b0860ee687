"""Rule-based decisions: each rule that fires adds a line of reasoning; nothing is applied.

A decision is advice with its steps (which policy to store, whom to ask); the steps name
the REST/AMQP operations that carry it out, so a person or an agent can follow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vsm.contract.system5 import Decision, DecisionType


@dataclass(frozen=True)
class Situation:
    """What S5 knows when asked: levels, thresholds, viability, open interventions."""

    pain: float
    pleasure: float
    threshold: float
    resolve_below: float
    viability: float | None
    readiness: float | None
    open_interventions: int
    overdue_interventions: int
    has_identity: bool


def number(context: dict[str, Any], key: str, default: float | None) -> float | None:
    value = context.get(key, default)
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def intervention(s: Situation, context: dict[str, Any]) -> tuple[str, list[str], list[str], float]:
    pain = number(context, "pain_level", s.pain) or 0.0
    if s.open_interventions:
        return (
            "hold: an intervention is already open",
            [f"{s.open_interventions} intervention(s) open; one episode gets one intervention"],
            ["Watch GET /api/vsm/system/5 until the episode resolves or escalates"],
            0.8,
        )
    if pain >= s.threshold:
        return (
            "intervene",
            [f"pain {pain:.2f} is at or above the threshold {s.threshold:.2f}"],
            [
                "Synthesise a policy: POST /api/vsm/system5/synthesis with the anomaly",
                "Ask S4 for an adaptation (S5 does this with every intervention)",
            ],
            0.9,
        )
    return (
        "no intervention",
        [f"pain {pain:.2f} is below the threshold {s.threshold:.2f}"],
        ["Keep monitoring the algedonic channel"],
        0.7,
    )


def escalation(s: Situation, context: dict[str, Any]) -> tuple[str, list[str], list[str], float]:
    if s.overdue_interventions:
        return (
            "escalate",
            [f"{s.overdue_interventions} intervention(s) unresolved past their deadline"],
            [
                "Escalate to the parent viable system (vsm.recursive, escalation.<parent>)",
                "Alert operators (vsm.operators, alert.<severity>) and await acknowledgement",
            ],
            0.85,
        )
    return (
        "do not escalate",
        ["no intervention is past its deadline"],
        ["Let the open interventions run"],
        0.75,
    )


def adaptation(s: Situation, context: dict[str, Any]) -> tuple[str, list[str], list[str], float]:
    reasons = []
    if s.pain >= s.threshold:
        mode = "defensive"
        reasons.append(f"pain {s.pain:.2f} is high: protect before changing")
    elif s.viability is not None and s.viability < 0.5 and (s.readiness or 0) >= 0.6:
        mode = "transformational"
        reasons.append(f"viability {s.viability:.2f} is low and S4 readiness is high")
    else:
        mode = "incremental"
        reasons.append("no acute pain and no case for transformation")
    if s.viability is None:
        reasons.append("viability is unknown (no measured inputs yet)")
    return (
        f"adapt {mode}ly",
        reasons,
        [
            f"Store an adaptation policy with mode {mode}: PUT /api/vsm/policies/adaptation",
            "Ask S4 for a concrete proposal (S5 validates it as policy)",
        ],
        0.7,
    )


def resource_allocation(
    s: Situation, context: dict[str, Any]
) -> tuple[str, list[str], list[str], float]:
    demands = context.get("demands")
    if not isinstance(demands, dict) or not demands:
        return (
            "cannot allocate",
            ["context.demands (unit -> demand) is missing or empty"],
            ["Ask again with context.demands"],
            0.2,
        )
    reserve = 0.2 if s.pain >= s.threshold else 0.1
    numeric = {k: float(v) for k, v in demands.items() if isinstance(v, int | float) and v > 0}
    total = sum(numeric.values()) or 1.0
    shares = {k: round(v / total * (1 - reserve), 4) for k, v in numeric.items()}
    return (
        f"allocate in proportion to demand, reserve {reserve:.0%}",
        [
            f"{len(shares)} unit(s) with positive demand share {1 - reserve:.0%} of the budget",
            "a larger reserve while pain is high" if reserve > 0.1 else "normal reserve",
        ],
        [
            "PUT /api/vsm/policies/resource_allocation with "
            f'{{"policy": {{"shares": {shares}, "reserve": {reserve}}}}}',
            "S3 applies the shares to its budgets",
        ],
        0.75,
    )


def policy_review(s: Situation, context: dict[str, Any]) -> tuple[str, list[str], list[str], float]:
    reasons = []
    if not s.has_identity:
        reasons.append("no identity is declared: policies cannot be checked against it")
    if s.viability is not None and s.viability < 0.5:
        reasons.append(f"viability {s.viability:.2f} is below 0.5")
    if not reasons:
        return ("keep the current policies", ["identity declared, viability acceptable"], [], 0.6)
    return (
        "review the policies",
        reasons,
        ["Declare the identity: PUT /api/vsm/identity", "Review GET /api/vsm/policies"],
        0.7,
    )


RULES = {
    "intervention": intervention,
    "escalation": escalation,
    "adaptation": adaptation,
    "resource_allocation": resource_allocation,
    "policy_review": policy_review,
}


def decide(
    decision_id: str, decision_type: DecisionType, context: dict[str, Any], s: Situation
) -> Decision:
    choice, reasoning, steps, confidence = RULES[decision_type](s, context)
    return Decision(
        decision_id=decision_id,
        decision_type=decision_type,
        decision=choice,
        reasoning=reasoning,
        steps=steps,
        confidence=confidence,
        inputs={
            "pain": round(s.pain, 4),
            "pleasure": round(s.pleasure, 4),
            "viability": s.viability,
            "open_interventions": s.open_interventions,
        },
    )
