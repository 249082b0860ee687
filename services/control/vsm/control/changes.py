"""What S3 changed: one agent's allocation after a request, a preemption, a policy or a release.

Handlers turn each `Change` into an `AllocationChanged` on `vsm.control`; `kind` is the
`reason` label of `vsm_allocation_changes_total`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vsm.contract.control import AllocationChanged, Resources
from vsm.control.ledger import Account

ChangeKind = Literal[
    "request",
    "preempted",
    "throttle",
    "shares",
    "restored",
    "damped_release",
    "budget",
    "adaptation",
]


@dataclass(frozen=True)
class Change:
    agent_id: str
    agent_type: str
    vsm_id: str
    resources: Resources
    max_rate_per_s: float | None
    kind: ChangeKind
    reason: str
    policy: str | None = None
    cause: Any = None
    """The envelope that caused it (request, PolicyChanged), for the causal chain."""

    @classmethod
    def of(
        cls,
        account: Account,
        kind: ChangeKind,
        reason: str,
        policy: str | None = None,
        cause: Any = None,
    ) -> Change:
        return cls(
            agent_id=account.agent_id,
            agent_type=account.agent_type,
            vsm_id=account.vsm_id,
            resources=account.resources.model_copy(update={"llm_usd_per_day": account.usd_share}),
            max_rate_per_s=account.max_rate_per_s,
            kind=kind,
            reason=reason[:512],
            policy=policy,
            cause=cause,
        )

    def message(self) -> AllocationChanged:
        return AllocationChanged(
            agent_id=self.agent_id,
            agent_type=self.agent_type,
            resources=self.resources,
            max_rate_per_s=self.max_rate_per_s,
            reason=self.reason,
            policy=self.policy,
        )


def differs(before: Account, after: Account) -> bool:
    """Whether the agent would notice: its resources, rate limit or LLM share changed."""
    return (before.resources, before.max_rate_per_s, before.usd_share) != (
        after.resources,
        after.max_rate_per_s,
        after.usd_share,
    )


def with_slots(resources: Resources, slots: int, tokens: int | None = None) -> Resources:
    update: dict[str, int] = {"concurrency_slots": slots}
    if tokens is not None:
        update["llm_tokens_per_min"] = tokens
    return resources.model_copy(update=update)
