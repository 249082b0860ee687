"""Queen's request handlers on `vsm.queen.requests`: each answers one question or command.

Business errors are `ErrorReply`s with a stable code (`policy_not_found`,
`policy_version_not_found`, `identity_not_found`, `invalid_policy`,
`invalid_against_identity`, `meta_system_not_found`, `meta_system_exists`,
`quota_exceeded`, `cyclic_vsm_id`, `has_children`, `over_budget`, `message_not_found`),
which the gateway turns into 404 / 409 / 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.health import StatusQuery
from vsm.contract.message import Message
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
from vsm.contract.recursion import (
    MetaSystemDescription,
    MetaSystemQuery,
    MetaSystemTree,
    RetireMetaSystem,
    SpawnMetaSystem,
)
from vsm.contract.system5 import (
    DecisionRequest,
    SynthesisRequest,
    System5Query,
    Trace,
    TraceQuery,
)
from vsm.kit.bus import Bus
from vsm.queen.actions import Actions
from vsm.queen.decisions import decide
from vsm.queen.health import system_status
from vsm.queen.meta import Refused
from vsm.queen.policies import PolicyRejected
from vsm.queen.recursion import MetaSystems
from vsm.queen.rules import Anomaly
from vsm.queen.synthesis import synthesise
from vsm.queen.trail import Trail, render

Answer = Callable[[Envelope[Any]], Awaitable[Message]]


def answering(bus: Bus, message: type[Message]) -> Callable[[Answer], Answer]:
    """Register `answer` for `message`; a `PolicyRejected` or `Refused` becomes an ErrorReply."""
    queue = topology.requests_queue("queen")

    def register_answer(answer: Answer) -> Answer:
        async def handler(envelope: Envelope[Any]) -> RabbitResponse:
            try:
                reply = await answer(envelope)
            except PolicyRejected as rejected:
                reply = ErrorReply(
                    code=rejected.code,
                    message=rejected.message[:4096],
                    details={"reasons": rejected.reasons},
                )
            except Refused as refused:
                reply = ErrorReply(code=refused.code, message=refused.message[:4096])
            return bus.reply(reply, cause=envelope)

        handler.__name__ = handler.__qualname__ = f"on_{message.__name__}"
        handler.__annotations__ = {"envelope": Envelope[message], "return": RabbitResponse}  # type: ignore[valid-type]
        bus.handle(queue, message)(handler)
        return answer

    return register_answer


def register(actions: Actions, llm: str) -> None:
    bus, s5, journal = actions.bus, actions.s5, actions.journal

    @answering(bus, StatusQuery)
    async def status(envelope: Envelope[StatusQuery]) -> Message:
        now = datetime.now(UTC)
        viability = s5.viability(envelope.vsm_id, now)
        board = system_status(s5.board, now, envelope.vsm_id)
        return board.model_copy(
            update={"viability": viability.score, "viability_coverage": viability.coverage}
        )

    @answering(bus, StorePolicy)
    async def store(envelope: Envelope[StorePolicy]) -> Message:
        request = envelope.data
        record = await journal.adopt(
            envelope.vsm_id,
            request.policy_type,
            request.policy,
            source="operator",
            reason=request.reason,
            cause=envelope,
        )
        return PolicyReply(record=record)

    @answering(bus, PolicyQuery)
    async def get(envelope: Envelope[PolicyQuery]) -> Message:
        await journal.opened.wait()
        query = envelope.data
        return PolicyReply(record=s5.store.get(envelope.vsm_id, query.policy_type, query.version))

    @answering(bus, PolicyListQuery)
    async def listing(envelope: Envelope[PolicyListQuery]) -> Message:
        await journal.opened.wait()
        latest = s5.store.latest_of(envelope.vsm_id)
        return PolicyList(
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

    @answering(bus, PolicyDiffQuery)
    async def difference(envelope: Envelope[PolicyDiffQuery]) -> Message:
        await journal.opened.wait()
        query = envelope.data
        added, removed, changed = s5.store.diff(
            envelope.vsm_id, query.policy_type, query.from_version, query.to_version
        )
        return PolicyDiff(
            policy_type=query.policy_type,
            from_version=query.from_version,
            to_version=query.to_version,
            added=added,
            removed=removed,
            changed=changed,
        )

    @answering(bus, IdentityQuery)
    async def identity(envelope: Envelope[IdentityQuery]) -> Message:
        await journal.opened.wait()
        record = s5.store.latest(envelope.vsm_id, "identity")
        if record is None:
            raise PolicyRejected(
                "identity_not_found",
                f"{envelope.vsm_id} has not declared its identity (PUT /api/vsm/identity)",
            )
        return PolicyReply(record=record)

    @answering(bus, DecisionRequest)
    async def decision(envelope: Envelope[DecisionRequest]) -> Message:
        request = envelope.data
        situation = s5.situation(envelope.vsm_id, datetime.now(UTC))
        decision_id = f"dec-{uuid.uuid4().hex[:12]}"
        return decide(decision_id, request.decision_type, request.context, situation)

    @answering(bus, SynthesisRequest)
    async def synthesis(envelope: Envelope[SynthesisRequest]) -> Message:
        request = envelope.data
        anomaly = Anomaly(request.anomaly_type, request.severity, request.context)
        result = await synthesise(journal, actions.proposer, envelope.vsm_id, anomaly, envelope)
        actions.metrics.synthesis.labels(result.llm_outcome).inc()
        return result

    @answering(bus, System5Query)
    async def state(envelope: Envelope[System5Query]) -> Message:
        await journal.opened.wait()
        return s5.state(envelope.vsm_id, datetime.now(UTC), llm)


def register_recursion(bus: Bus, meta: MetaSystems, trail: Trail) -> None:
    """Meta-systems (spawn, retire, list) and the causal trail (trace)."""
    journal = meta.journal

    @answering(bus, SpawnMetaSystem)
    async def spawn_meta_system(envelope: Envelope[SpawnMetaSystem]) -> Message:
        await journal.opened.wait()
        return MetaSystemDescription(meta_system=await meta.spawn(envelope))

    @answering(bus, RetireMetaSystem)
    async def retire_meta_system(envelope: Envelope[RetireMetaSystem]) -> Message:
        await journal.opened.wait()
        return MetaSystemDescription(meta_system=await meta.retire(envelope, envelope.data.vsm_id))

    @answering(bus, MetaSystemQuery)
    async def meta_systems(envelope: Envelope[MetaSystemQuery]) -> Message:
        await journal.opened.wait()
        tree, parent = meta.tree, envelope.vsm_id
        if not tree.exists(parent):
            raise Refused("meta_system_not_found", f"no viable system {parent!r}")
        children = [tree.view(c.vsm_id, meta.reported) for c in tree.children_of(parent)]
        return MetaSystemTree(vsm_id=parent, children=children)

    @answering(bus, TraceQuery)
    async def trace(envelope: Envelope[TraceQuery]) -> Message:
        message_id = envelope.data.message_id
        chain = trail.chain(message_id)
        if chain is None:
            raise Refused(
                "message_not_found", f"no message {message_id!r} on the trail (kept for a day)"
            )
        return Trace(message_id=message_id, chain=chain, text=render(chain))
