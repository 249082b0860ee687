"""S3*'s judgement: what an audit's answers, the ledger and S1's own reports say about agents.

Findings: `silent` (no answer within the timeout), `allocated_but_idle` (more than one slot,
nothing in flight or waiting, and its latest performance report shows no work),
`saturated` (commands wait for a slot), `failing` (more failures than successes in its
latest report). One recommendation per finding, phrased as the action to take.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from vsm.contract.control import AgentAudit, Finding
from vsm.contract.performance import UnitPerformance
from vsm.control.ledger import Account


def _resources(report: dict[str, Any]) -> dict[str, Any]:
    nested = report.get("resources")
    return nested if isinstance(nested, dict) else report


def _performance(report: dict[str, Any], latest: UnitPerformance | None) -> UnitPerformance | None:
    """The performance the agent just reported in the audit, else its latest report to S3."""
    told = report.get("performance")
    if isinstance(told, dict):
        try:
            return UnitPerformance.model_validate(told)
        except ValidationError:
            return latest
    return latest


def _count(resources: dict[str, Any], key: str) -> int | None:
    value = resources.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def judge(
    audit: AgentAudit, account: Account | None, latest: UnitPerformance | None, timeout_s: float
) -> list[tuple[Finding, str]]:
    """Findings on one agent, each with its recommendation."""
    agent = audit.agent_id
    if audit.outcome == "timeout":
        why = audit.report.get("error", f"no answer within {timeout_s:g} s")
        return [
            (
                Finding(agent_id=agent, code="silent", detail=f"{agent} is silent: {why}"),
                f"check {agent}: it did not answer the audit ({why})",
            )
        ]
    found = []
    resources = _resources(audit.report)
    in_flight, waiting = _count(resources, "in_flight"), _count(resources, "waiting")
    performance = _performance(audit.report, latest)
    slots = account.resources.concurrency_slots if account else 0
    worked = None if performance is None else performance.succeeded + performance.failed
    if slots > 1 and in_flight == 0 and waiting == 0 and worked == 0:
        detail = f"{agent} holds {slots} slots, has nothing in flight or waiting and did no work"
        detail += f" in its last {performance.window_s:g} s" if performance else ""
        found.append(
            (
                Finding(agent_id=agent, code="allocated_but_idle", detail=detail),
                f"reduce {agent} to 1 slot",
            )
        )
    if waiting:
        found.append(
            (
                Finding(
                    agent_id=agent,
                    code="saturated",
                    detail=f"{agent}: {waiting} commands wait for its {slots} slots",
                ),
                f"give {agent} more than {slots} slots, or send its work elsewhere",
            )
        )
    if performance is not None and performance.failed > performance.succeeded:
        failed, succeeded = performance.failed, performance.succeeded
        found.append(
            (
                Finding(
                    agent_id=agent,
                    code="failing",
                    detail=f"{agent}: {failed} failed, {succeeded} succeeded in its last report",
                ),
                f"throttle {agent} or repair what it depends on",
            )
        )
    return found


def sample(agent_ids: Sequence[str], size: int, rng: random.Random) -> list[str]:
    """A small random sample for a sporadic audit (Beer's S3*: unannounced, not exhaustive)."""
    return sorted(rng.sample(list(agent_ids), min(size, len(agent_ids))))
