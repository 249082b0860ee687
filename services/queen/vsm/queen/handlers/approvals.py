"""S5's decision rights: the proposals waiting for a person, and a person's decision.

Refusals are `ErrorReply`s with a stable code (`approval_not_found`, `approval_closed`, and
the policy's own when an approved one no longer validates), which the gateway turns into
404 / 409 / 422.
"""

from __future__ import annotations

from vsm.contract.approvals import ApprovalList, ApprovalQuery, DecideApproval
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.queen.handlers.answering import answering
from vsm.queen.proposals import Proposals


def register(proposals: Proposals) -> None:
    bus, journal = proposals.bus, proposals.journal

    @answering(bus, ApprovalQuery)
    async def pending(envelope: Envelope[ApprovalQuery]) -> Message:
        return ApprovalList(approvals=proposals.desk.listing())

    @answering(bus, DecideApproval)
    async def decide(envelope: Envelope[DecideApproval]) -> Message:
        await journal.opened.wait()
        return await proposals.decide(envelope.data)
