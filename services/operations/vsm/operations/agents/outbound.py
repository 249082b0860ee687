"""How an agent reaches outside on a caller's behalf: through the egress client, under the
operator's policy; a refused destination is a `destination_not_allowed` result, counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from vsm.kit.egress import Blocked, EgressPolicy, OnDemand, Reason
from vsm.operations.agents.base import CommandFailed

if TYPE_CHECKING:
    from vsm.kit.egress.client import Fetched

log = structlog.get_logger("vsm.operations.outbound")

Count = Callable[[str, Reason], None]
"""(agent type, reason) -> count one refusal."""


def uncounted(agent_type: str, reason: Reason) -> None:
    return None


@dataclass(frozen=True)
class Outbound:
    http: OnDemand
    """The egress client, made on the first call out (httpx only then)."""
    policy: EgressPolicy
    count: Count = uncounted

    async def fetch(self, agent_type: str, method: str, url: str, **options: Any) -> Fetched:
        """One call, its body read up to the operator's cap (`Fetched.truncated` beyond)."""
        from vsm.kit.egress.client import fetch

        try:
            return await fetch(self.http(), method, url, self.policy.max_body_bytes, **options)
        except Blocked as refused:
            raise self.refusal(agent_type, refused) from refused

    def refusal(self, agent_type: str, refused: Blocked) -> CommandFailed:
        self.count(agent_type, refused.reason)
        log.warning(
            "destination_not_allowed",
            agent_type=agent_type,
            reason=refused.reason,
            detail=refused.message,
        )
        return CommandFailed("destination_not_allowed", refused.message, {"reason": refused.reason})
