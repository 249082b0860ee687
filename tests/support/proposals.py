"""S4 proposing a policy, as S4 publishes it: the way a test puts a decision before S5 (and,
when governance says so, before a person)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, proposal_key


async def s4_proposes(probe: Probe, vsm_id: str, policy: dict[str, Any], why: str) -> None:
    """A defensive `AdaptationProposal` of `policy` (a throttle) for `vsm_id`."""
    proposal = AdaptationProposal(
        proposal_id=f"p-{uuid.uuid4().hex[:8]}",
        kind="defensive",
        rationale=why,
        policy_type="throttle",
        policy=policy,
        confidence=0.8,
    )
    await probe.bus.publish(
        topology.INTELLIGENCE, proposal, routing_key=proposal_key("defensive"), vsm_id=vsm_id
    )
