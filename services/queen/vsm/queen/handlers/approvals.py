"""S5's decision rights: the proposals waiting for a person, and a person's decision.

Refusals are `Refused` with a stable code (`approval_not_found`, `approval_closed`, and
the policy's own when an approved one no longer validates), which the kit answers as an
`ErrorReply` and the gateway turns into 404 / 409 / 422.
"""

from __future__ import annotations

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.approvals import ApprovalList, ApprovalQuery, DecideApproval
from vsm.contract.envelope import Envelope
from vsm.queen.proposals import Proposals

REQUESTS = topology.requests_queue("queen")


def register(proposals: Proposals) -> None:
    bus, journal = proposals.bus, proposals.journal

    @bus.handle(REQUESTS, ApprovalQuery)
    async def pending(envelope: Envelope[ApprovalQuery]) -> RabbitResponse:
        await proposals.restored()
        return bus.reply(ApprovalList(approvals=proposals.desk.listing()), cause=envelope)

    @bus.handle(REQUESTS, DecideApproval)
    async def decide(envelope: Envelope[DecideApproval]) -> RabbitResponse:
        await journal.opened.wait()
        await proposals.restored()
        return bus.reply(await proposals.decide(envelope.data), cause=envelope)
