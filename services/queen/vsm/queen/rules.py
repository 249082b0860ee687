"""The rule-based policy synthesiser: always available, never waits on anything.

An anomaly `{anomaly_type, severity, context}` becomes candidate policies, best first:
a rate problem throttles its target (merged into the current throttle policy), any
anomaly also yields an adaptation policy (defensive when severe, incremental otherwise).
A `budget` anomaly (S3: an agent's share or a system's daily LLM cap is 80% spent)
throttles its target to the rate its share can sustain until the day ends (S3 says it in
`context.sustainable_rate_per_s`), no faster than the rate cut by severity. The first
candidate that the store admits is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vsm.contract.policy import PolicyRecord, ThrottlePolicy

RATE_TROUBLE = frozenset(
    {
        "error_burst",
        "overload",
        "latency",
        "timeout",
        "rate_limited",
        "queue_backlog",
        "oscillation",
        "failure",
        "errors",
    }
)
BUDGET = "budget"
DEFAULT_RATE_PER_S = 10.0
MIN_RATE_PER_S = 0.1


@dataclass(frozen=True)
class Anomaly:
    anomaly_type: str
    severity: float
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        for key in ("agent_id", "target", "origin"):
            value = self.context.get(key)
            if isinstance(value, str) and value:
                return value
        return "*"


@dataclass(frozen=True)
class Candidate:
    policy_type: str
    document: dict[str, Any]
    rationale: str


def throttled_rate(anomaly: Anomaly) -> float:
    """Cut the current rate by up to half, in proportion to severity."""
    current = anomaly.context.get("current_rate_per_s")
    rate = (
        float(current) if isinstance(current, int | float) and current > 0 else DEFAULT_RATE_PER_S
    )
    return max(MIN_RATE_PER_S, round(rate * (1 - anomaly.severity / 2), 3))


def budget_rate(anomaly: Anomaly) -> float:
    """The rate cut by severity, or lower: what the spender's share can sustain today."""
    rate = throttled_rate(anomaly)
    sustainable = anomaly.context.get("sustainable_rate_per_s")
    if isinstance(sustainable, int | float) and sustainable >= 0:
        rate = min(rate, float(sustainable))
    return max(MIN_RATE_PER_S, round(rate, 3))


def throttle(anomaly: Anomaly, current: PolicyRecord | None) -> Candidate:
    limits = []
    if current is not None and isinstance(current.policy, ThrottlePolicy):
        limits = [
            limit.model_dump(mode="json")
            for limit in current.policy.limits
            if limit.target != anomaly.target
        ]
    budget = anomaly.anomaly_type == BUDGET
    rate = budget_rate(anomaly) if budget else throttled_rate(anomaly)
    limits.append(
        {
            "target": anomaly.target,
            "max_rate_per_s": rate,
            "reason": f"{anomaly.anomaly_type} at severity {anomaly.severity:.2f}",
        }
    )
    why = (
        f"{anomaly.target} spends its LLM budget too fast"
        if budget
        else f"{anomaly.anomaly_type} is a rate problem"
    )
    return Candidate(
        "throttle",
        {"policy_type": "throttle", "limits": limits},
        f"{why}: limit {anomaly.target} to {rate}/s",
    )


def adaptation(anomaly: Anomaly) -> Candidate:
    severe = anomaly.severity >= 0.7
    mode = "defensive" if severe else "incremental"
    actions = (
        [
            f"S3: protect the units affected by {anomaly.anomaly_type} (reserve, reallocation)",
            f"S4: investigate {anomaly.anomaly_type} at {anomaly.target} and propose an adaptation",
        ]
        if severe
        else [f"S4: watch {anomaly.anomaly_type} at {anomaly.target} and propose an adaptation"]
    )
    rationale = (
        f"{anomaly.anomaly_type} at severity {anomaly.severity:.2f} calls for a {mode} response"
    )
    return Candidate(
        "adaptation",
        {"policy_type": "adaptation", "mode": mode, "actions": actions, "rationale": rationale},
        rationale,
    )


def lift(target: str, current: PolicyRecord | None, why: str) -> Candidate | None:
    """The throttle policy without `target`'s limit (None when it has none to lift)."""
    if current is None or not isinstance(current.policy, ThrottlePolicy):
        return None
    kept = [limit for limit in current.policy.limits if limit.target != target]
    if len(kept) == len(current.policy.limits):
        return None
    return Candidate(
        "throttle",
        {"policy_type": "throttle", "limits": [limit.model_dump(mode="json") for limit in kept]},
        f"lift the limit on {target}: {why}",
    )


def candidates(anomaly: Anomaly, current: dict[str, PolicyRecord]) -> list[Candidate]:
    """The rules' answers to `anomaly`, best first, given the current policies by type."""
    found = []
    if anomaly.anomaly_type in RATE_TROUBLE or anomaly.anomaly_type == BUDGET:
        found.append(throttle(anomaly, current.get("throttle")))
    found.append(adaptation(anomaly))
    return found
