"""S3's AMQP handlers: decode, call System 3, publish or reply. Nothing else.

Ack policy (the kit's): ack once a handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
A request S3 refuses is answered with an `ErrorReply` and changes nothing. Nothing is read
before S3's journal is, and every change is in the journal before it is answered or announced.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.control import (
    AllocationRequest,
    AuditCommission,
    CarveBudget,
    ReleaseBudget,
    SetBudget,
    System3Query,
    System3Snapshot,
)
from vsm.contract.coordination import Damping
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.operations import AgentCrashed, AgentSpawned, AgentTerminated
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import PolicyChanged
from vsm.control import budgets
from vsm.control.auditor import audit_agents
from vsm.control.budgets import Refused
from vsm.control.outlets import Outlets
from vsm.control.reports import audit_report, state
from vsm.control.system3 import System3
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal

Clock = Callable[[], datetime]
INTAKE = topology.SYSTEM3_CONTROL
REQUESTS = topology.requests_queue("control")


def now_utc() -> datetime:
    return datetime.now(UTC)


def register(
    bus: Bus,
    s3: System3,
    out: Outlets,
    journal: StateJournal[System3Snapshot],
    clock: Clock = now_utc,
) -> None:
    _intake(bus, s3, out, journal, clock)
    _requests(bus, s3, out, journal, clock)


def refused(bus: Bus, refusal: Refused, cause: Envelope[Any]) -> RabbitResponse:
    error = ErrorReply(code=refusal.code, message=refusal.message, details=refusal.details)
    return bus.reply(error, cause=cause)


def _intake(
    bus: Bus, s3: System3, out: Outlets, journal: StateJournal[System3Snapshot], clock: Clock
) -> None:
    ready, keep = journal.opened.wait, journal.keep

    @bus.handle(INTAKE, AgentSpawned)
    async def on_spawned(envelope: Envelope[AgentSpawned]) -> None:
        await ready()
        s3.admit(envelope.data.agent)
        journal.later()  # S1's registry is the record; kept at the next release tick

    @bus.handle(INTAKE, AgentTerminated)
    async def on_terminated(envelope: Envelope[AgentTerminated]) -> None:
        await ready()
        s3.close(envelope.data.agent_id)
        journal.later()

    @bus.handle(INTAKE, AgentCrashed)
    async def on_crashed(envelope: Envelope[AgentCrashed]) -> None:
        """A crashed agent lives on and keeps its allocation; S3* audits will show it."""

    @bus.handle(INTAKE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        await ready()
        s3.record_performance(envelope.data)

    @bus.handle(INTAKE, Damping)
    async def on_damping(envelope: Envelope[Damping]) -> None:
        await ready()
        s3.damper.damp(envelope.data.subject, envelope.data.until)
        await keep()

    @bus.handle(INTAKE, PolicyChanged)
    async def on_policy(envelope: Envelope[PolicyChanged]) -> None:
        await ready()
        changes = s3.apply_policy(envelope.data.record, clock(), envelope)
        await keep()
        await out.changed(changes)

    @bus.handle(INTAKE, AllocationRequest)
    async def on_allocation(envelope: Envelope[AllocationRequest]) -> RabbitResponse:
        await ready()
        try:
            grant, changes = s3.request(envelope.data, clock(), envelope)
        except Refused as refusal:
            return refused(bus, refusal, envelope)
        await keep()
        await out.changed(changes)
        return bus.reply(grant, cause=envelope)


def _requests(
    bus: Bus, s3: System3, out: Outlets, journal: StateJournal[System3Snapshot], clock: Clock
) -> None:
    ready, keep = journal.opened.wait, journal.keep

    @bus.handle(REQUESTS, SetBudget)
    async def on_budget(envelope: Envelope[SetBudget]) -> RabbitResponse:
        await ready()
        try:
            budgets.set_budget(s3.ledger, envelope.vsm_id, envelope.data.budget)
        except Refused as refusal:
            return refused(bus, refusal, envelope)
        await keep()
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, CarveBudget)
    async def on_carve(envelope: Envelope[CarveBudget]) -> RabbitResponse:
        await ready()
        try:
            budgets.carve(s3.ledger, envelope.vsm_id, envelope.data.child, envelope.data.budget)
        except Refused as refusal:
            return refused(bus, refusal, envelope)
        await keep()
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, ReleaseBudget)
    async def on_release(envelope: Envelope[ReleaseBudget]) -> RabbitResponse:
        await ready()
        try:
            budgets.release(s3.ledger, envelope.vsm_id, envelope.data.child)
        except Refused as refusal:
            return refused(bus, refusal, envelope)
        await keep()
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, System3Query)
    async def on_state(envelope: Envelope[System3Query]) -> RabbitResponse:
        await ready()
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, AuditCommission)
    async def on_audit(envelope: Envelope[AuditCommission]) -> RabbitResponse:
        await ready()
        commission, started = envelope.data, clock()
        if commission.agent_ids is None:
            agent_ids = sorted(s3.ledger.peek(envelope.vsm_id).accounts)
        else:
            agent_ids = list(dict.fromkeys(commission.agent_ids))
        unknown = [a for a in agent_ids if s3.ledger.account(a) is None]
        if unknown:
            message = f"S3 knows no agent {', '.join(map(repr, unknown))}: nothing was audited"
            return refused(bus, Refused("unknown_agent", message, {"unknown": unknown}), envelope)
        answers = await audit_agents(
            bus, agent_ids, commission.audit_type, commission.timeout_s, envelope
        )
        findings = audit_report(
            s3,
            envelope.vsm_id,
            answers,
            trigger="requested",
            audit_type=commission.audit_type,
            started_at=started,
            timeout_s=commission.timeout_s,
        )
        await out.audited(findings, envelope.vsm_id, envelope)
        return bus.reply(findings, cause=envelope)
