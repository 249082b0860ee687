"""S3's AMQP handlers: decode, call System 3, publish or reply. Nothing else.

Ack policy (the kit's): ack once a handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered.
A request S3 refuses raises `Refused` (the kit answers its `ErrorReply`) and changes nothing.
Nothing is read before S3's journal is, and every decision is in the journal before it is
answered or announced (what S3 merely observes is kept at the next release tick). What S1's
registry records is not kept for its own sake: an account opened or closed as the registry
says is told again by its listing at start-up (`registry.py`), so a spawn or termination
marks the journal only for what the listing cannot tell (a USD share, a day's spend), and
a bulk of them does not write S3's whole state at every release tick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

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
from vsm.contract.errors import Refused
from vsm.contract.llm import LlmUsage
from vsm.contract.operations import (
    AgentCrashed,
    AgentInfo,
    AgentRehomed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
)
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import PolicyChanged
from vsm.control import budgets
from vsm.control.adapter import Adapter
from vsm.control.auditor import audit_agents
from vsm.control.outlets import Outlets
from vsm.control.reports import audit_report, state
from vsm.control.system3 import System3
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal

Clock = Callable[[], datetime]
INTAKE = topology.SYSTEM3_CONTROL
REQUESTS = topology.requests_queue("control")
Journal = StateJournal[System3Snapshot]


def now_utc() -> datetime:
    return datetime.now(UTC)


def register(
    bus: Bus,
    s3: System3,
    out: Outlets,
    adapter: Adapter,
    journal: Journal,
    *,
    clock: Clock = now_utc,
) -> None:
    register_intake(bus, s3, out, adapter, journal, clock=clock)
    register_registry(bus, s3, out, journal)
    register_requests(bus, s3, out, journal, clock=clock)


def stirred(s3: System3, journal: Journal) -> Callable[[], Awaitable[None]]:
    """What a handler awaits first: S3 counts the message (it may change what S3 reports on
    its own clock), then waits for its journal to be read back."""

    async def ready() -> None:
        s3.stir()
        await journal.opened.wait()

    return ready


def register_intake(
    bus: Bus, s3: System3, out: Outlets, adapter: Adapter, journal: Journal, *, clock: Clock
) -> None:
    """What S3 hears: S1's registry and reports, LLM spend, S2's damping, S5's policies."""
    ready, keep = stirred(s3, journal), journal.keep

    @bus.handle(INTAKE, AgentRehomed)
    async def on_rehomed(envelope: Envelope[AgentRehomed]) -> None:
        """The agent's account moves to its new system's budget (a child's carved one)."""
        await ready()
        changes = s3.rehome(envelope.data.agent)
        journal.later()
        await out.changed(changes)

    @bus.handle(INTAKE, AgentCrashed)
    async def on_crashed(envelope: Envelope[AgentCrashed]) -> None:
        """A crashed agent lives on and keeps its allocation; S3* audits will show it."""

    @bus.handle(INTAKE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        await ready()
        s3.record_performance(envelope.data)
        await adapter.reported(envelope.data)

    @bus.handle(INTAKE, LlmUsage)
    async def on_llm_usage(envelope: Envelope[LlmUsage]) -> None:
        await ready()
        crossings, changes = s3.use(envelope.data, envelope.vsm_id, envelope)
        if changes or crossings:
            await keep()
        else:
            journal.later()  # the day's spend, kept at the next release tick
        await out.spent(crossings, changes, s3.spend, clock())

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
        await adapter.carry_out(envelope.data.record, envelope)
        journal.later()  # what adaptation changed of the grants


def register_registry(bus: Bus, s3: System3, out: Outlets, journal: Journal) -> None:
    """S1's registry events: an account opened or closed per agent (a bulk spawn's or
    terminate's batch: each of its agents), one journal mark per event at most."""
    ready = stirred(s3, journal)

    async def admitted(agents: Iterable[AgentInfo]) -> None:
        await ready()
        changes = [change for agent in agents for change in s3.admit(agent)]
        if changes:  # their USD shares: kept at the next release tick
            journal.later()
        await out.changed(changes)

    async def closed(agent_ids: Iterable[str]) -> None:
        await ready()
        kept = [agent_id for agent_id in agent_ids if s3.close(agent_id)]  # each one closed
        if kept:  # their shares or spend: kept at the release tick
            journal.later()

    @bus.handle(INTAKE, AgentSpawned)
    async def on_spawned(envelope: Envelope[AgentSpawned]) -> None:
        await admitted([envelope.data.agent])

    @bus.handle(INTAKE, AgentsSpawned)
    async def on_spawned_batch(envelope: Envelope[AgentsSpawned]) -> None:
        await admitted(envelope.data.agents)

    @bus.handle(INTAKE, AgentTerminated)
    async def on_terminated(envelope: Envelope[AgentTerminated]) -> None:
        await closed([envelope.data.agent_id])

    @bus.handle(INTAKE, AgentsTerminated)
    async def on_terminated_batch(envelope: Envelope[AgentsTerminated]) -> None:
        await closed(envelope.data.agent_ids)


def register_requests(
    bus: Bus, s3: System3, out: Outlets, journal: Journal, *, clock: Clock
) -> None:
    """What S3 answers: allocations, budgets and carves, its state, S3* audits."""
    ready, keep = stirred(s3, journal), journal.keep

    @bus.handle(INTAKE, AllocationRequest)
    async def on_allocation(envelope: Envelope[AllocationRequest]) -> RabbitResponse:
        await ready()
        grant, changes = s3.request(envelope.data, clock(), envelope)
        await keep()
        await out.changed(changes)
        return bus.reply(grant, cause=envelope)

    @bus.handle(REQUESTS, SetBudget)
    async def on_budget(envelope: Envelope[SetBudget]) -> RabbitResponse:
        await ready()
        changes = s3.set_budget(envelope.vsm_id, envelope.data.budget, envelope)
        await keep()
        await out.changed(changes)
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, CarveBudget)
    async def on_carve(envelope: Envelope[CarveBudget]) -> RabbitResponse:
        await ready()
        budgets.carve(s3.ledger, envelope.vsm_id, envelope.data.child, envelope.data.budget)
        await keep()
        return bus.reply(state(s3, envelope.vsm_id, clock()), cause=envelope)

    @bus.handle(REQUESTS, ReleaseBudget)
    async def on_release(envelope: Envelope[ReleaseBudget]) -> RabbitResponse:
        await ready()
        budgets.release(s3.ledger, envelope.vsm_id, envelope.data.child)
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
        agent_ids = audit_targets(s3, envelope.vsm_id, commission)
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


def audit_targets(s3: System3, vsm_id: str, commission: AuditCommission) -> list[str]:
    """The agents an audit commission names (all of the system's when it names none), or
    `unknown_agent` when S3 knows one of them not."""
    if commission.agent_ids is None:
        agent_ids = sorted(s3.ledger.peek(vsm_id).accounts)
    else:
        agent_ids = list(dict.fromkeys(commission.agent_ids))
    unknown = [a for a in agent_ids if s3.ledger.account(a) is None]
    if unknown:
        message = f"S3 knows no agent {', '.join(map(repr, unknown))}: nothing was audited"
        raise Refused("unknown_agent", message, {"unknown": unknown})
    return agent_ids
