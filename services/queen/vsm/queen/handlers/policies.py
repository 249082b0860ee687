"""S5's policy requests (store, get, list, diff, identity, synthesis) and S4's proposals.

Refusals are `PolicyRejected` (the kit answers their `ErrorReply`) with a stable code
(`policy_not_found`, `policy_version_not_found`, `identity_not_found`, `invalid_policy`,
`invalid_against_identity`), which the gateway turns into 404 / 422.
"""

from __future__ import annotations

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal
from vsm.contract.envelope import Envelope
from vsm.contract.policy import (
    IdentityQuery,
    PolicyDiff,
    PolicyDiffQuery,
    PolicyList,
    PolicyListQuery,
    PolicyQuery,
    PolicyReply,
    PolicySummary,
    StorePolicy,
)
from vsm.contract.system5 import SynthesisRequest
from vsm.queen.outlets import Outlets
from vsm.queen.policies import PolicyRejected
from vsm.queen.rules import Anomaly
from vsm.queen.synthesis import synthesise

REQUESTS = topology.requests_queue("queen")


def register(outlets: Outlets) -> None:
    bus, s5, journal = outlets.bus, outlets.s5, outlets.journal

    @bus.handle(topology.SYSTEM5_INTELLIGENCE, AdaptationProposal)
    async def on_proposal(envelope: Envelope[AdaptationProposal]) -> None:
        await outlets.consider(envelope)

    @bus.handle(REQUESTS, StorePolicy)
    async def store(envelope: Envelope[StorePolicy]) -> RabbitResponse:
        request = envelope.data
        record = await journal.adopt(
            envelope.vsm_id,
            request.policy_type,
            request.policy,
            source="operator",
            reason=request.reason,
            cause=envelope,
        )
        return bus.reply(PolicyReply(record=record), cause=envelope)

    @bus.handle(REQUESTS, PolicyQuery)
    async def get(envelope: Envelope[PolicyQuery]) -> RabbitResponse:
        await journal.opened.wait()
        query = envelope.data
        record = s5.store.get(envelope.vsm_id, query.policy_type, query.version)
        return bus.reply(PolicyReply(record=record), cause=envelope)

    @bus.handle(REQUESTS, PolicyListQuery)
    async def listing(envelope: Envelope[PolicyListQuery]) -> RabbitResponse:
        await journal.opened.wait()
        latest = s5.store.latest_of(envelope.vsm_id)
        listed = PolicyList(
            vsm_id=envelope.vsm_id,
            policies=[
                PolicySummary(
                    policy_type=r.policy_type,
                    latest_version=r.version,
                    source=r.source,
                    created_at=r.created_at,
                )
                for r in latest
            ],
        )
        return bus.reply(listed, cause=envelope)

    @bus.handle(REQUESTS, PolicyDiffQuery)
    async def difference(envelope: Envelope[PolicyDiffQuery]) -> RabbitResponse:
        await journal.opened.wait()
        query = envelope.data
        added, removed, changed = s5.store.diff(
            envelope.vsm_id, query.policy_type, query.from_version, query.to_version
        )
        diff = PolicyDiff(
            policy_type=query.policy_type,
            from_version=query.from_version,
            to_version=query.to_version,
            added=added,
            removed=removed,
            changed=changed,
        )
        return bus.reply(diff, cause=envelope)

    @bus.handle(REQUESTS, IdentityQuery)
    async def identity(envelope: Envelope[IdentityQuery]) -> RabbitResponse:
        await journal.opened.wait()
        record = s5.store.latest(envelope.vsm_id, "identity")
        if record is None:
            raise PolicyRejected(
                "identity_not_found",
                f"{envelope.vsm_id} has not declared its identity (PUT /api/vsm/identity)",
            )
        return bus.reply(PolicyReply(record=record), cause=envelope)

    @bus.handle(REQUESTS, SynthesisRequest)
    async def synthesis(envelope: Envelope[SynthesisRequest]) -> RabbitResponse:
        request = envelope.data
        anomaly = Anomaly(request.anomaly_type, request.severity, request.context)
        result = await synthesise(journal, outlets.proposer, envelope.vsm_id, anomaly, envelope)
        outlets.metrics.synthesis.labels(result.llm_outcome).inc()
        return bus.reply(result, cause=envelope)
