"""Queen's AMQP handlers, one module per concern: decode, call the domain, publish or reply.

Ack policy (the kit's): ack when the handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
"""

from __future__ import annotations

from vsm.queen.handlers import approvals, policies, recursion, signals, status, structure
from vsm.queen.outlets import Outlets
from vsm.queen.proposals import Proposals
from vsm.queen.recursion import MetaSystems
from vsm.queen.structure import Structure
from vsm.queen.trail import Trail


def register(
    outlets: Outlets,
    meta: MetaSystems,
    proposals: Proposals,
    trail: Trail,
    llm: str,
    *,
    grown: Structure,
) -> None:
    signals.register(outlets, meta, grown.worked)
    structure.register(outlets.bus, grown)
    policies.register(outlets)
    status.register(outlets, trail, llm)
    recursion.register(outlets.bus, meta)
    approvals.register(proposals)
