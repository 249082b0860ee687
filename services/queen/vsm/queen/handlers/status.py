"""S5's answers about the viable system: the status board, S5's state, decisions, and the
causal trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.health import StatusQuery
from vsm.contract.system5 import DecisionRequest, System5Query, Trace, TraceQuery
from vsm.queen.decisions import decide
from vsm.queen.health import system_status
from vsm.queen.journal import PolicyJournal
from vsm.queen.outlets import Outlets
from vsm.queen.system5 import System5
from vsm.queen.trail import Trail, render


async def known(s5: System5, journal: PolicyJournal, vsm_id: str) -> None:
    """Refuse a query about a viable system S5 knows nothing of: not in the meta-system tree
    (complete once the journal is replayed), nothing felt or measured for it. The gateway
    answers 404, and nothing is created for a made-up id."""
    if vsm_id in s5.feelings or vsm_id in s5.measured or journal.tree.exists(vsm_id):
        return
    await journal.opened.wait()
    if not journal.tree.exists(vsm_id):
        raise Refused("meta_system_not_found", f"no viable system {vsm_id!r}")


REQUESTS = topology.requests_queue("queen")


def register(outlets: Outlets, trail: Trail, llm: str) -> None:
    bus, s5, journal = outlets.bus, outlets.s5, outlets.journal

    @bus.handle(REQUESTS, StatusQuery)
    async def status(envelope: Envelope[StatusQuery]) -> RabbitResponse:
        await known(s5, journal, envelope.vsm_id)
        now = datetime.now(UTC)
        viability = s5.viability(envelope.vsm_id, now)
        board = system_status(s5.board, now, envelope.vsm_id)
        board = board.model_copy(
            update={"viability": viability.score, "viability_coverage": viability.coverage}
        )
        return bus.reply(board, cause=envelope)

    @bus.handle(REQUESTS, DecisionRequest)
    async def decision(envelope: Envelope[DecisionRequest]) -> RabbitResponse:
        await known(s5, journal, envelope.vsm_id)
        request = envelope.data
        situation = s5.situation(envelope.vsm_id, datetime.now(UTC))
        decision_id = f"dec-{uuid.uuid4().hex[:12]}"
        decided = decide(decision_id, request.decision_type, request.context, situation)
        return bus.reply(decided, cause=envelope)

    @bus.handle(REQUESTS, System5Query)
    async def state(envelope: Envelope[System5Query]) -> RabbitResponse:
        await journal.opened.wait()
        await outlets.restored()
        await known(s5, journal, envelope.vsm_id)
        return bus.reply(s5.state(envelope.vsm_id, datetime.now(UTC), llm), cause=envelope)

    @bus.handle(REQUESTS, TraceQuery)
    async def trace(envelope: Envelope[TraceQuery]) -> RabbitResponse:
        message_id = envelope.data.message_id
        chain = trail.chain(message_id)
        if chain is None:
            raise Refused(
                "message_not_found", f"no message {message_id!r} on the trail (kept for a day)"
            )
        return bus.reply(
            Trace(message_id=message_id, chain=chain, text=render(chain)), cause=envelope
        )
