"""S3's handlers in memory (vsm.kit.testing): decode, call System 3, reply or publish, refuse."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from vsm.contract import topology
from vsm.contract.control import (
    AllocationChanged,
    AllocationGrant,
    AllocationRequest,
    ReleaseBudget,
    Resources,
    SetBudget,
    System3Query,
    System3Snapshot,
    System3State,
)
from vsm.contract.errors import ErrorReply
from vsm.contract.llm import LlmUsage
from vsm.contract.operations import (
    AgentInfo,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
)
from vsm.control import app, handlers
from vsm.control.metrics import create_metrics
from vsm.control.outlets import Outlets
from vsm.control.settings import Settings
from vsm.kit.journal import StateJournal
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory

BUDGET = Resources(concurrency_slots=8, llm_tokens_per_min=1000, memory_mb=0)


@pytest.fixture
async def s3() -> AsyncIterator[InMemory]:
    async with control(Settings(log_format="console", agent_memory_mb=0)) as (memory, _):
        yield memory


@contextlib.asynccontextmanager
async def control(
    settings: Settings,
) -> AsyncIterator[tuple[InMemory, StateJournal[System3Snapshot]]]:
    """S3's handlers in memory, and its journal (opened empty, never written)."""
    runtime = Runtime("control", settings)
    system3 = app.build_system3(settings)
    out = Outlets(runtime.bus, create_metrics(runtime.telemetry.registry))
    adapter = app.build_adapter(runtime.bus, system3, out, settings)
    decisions = app.build_journal(runtime.bus, system3, settings)
    decisions.opened.set()  # an empty journal, read back
    handlers.register(runtime.bus, system3, out, adapter, decisions)
    async with InMemory(runtime.bus) as memory:
        yield memory, decisions


def worker(agent_id: str) -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        agent_type="worker",
        allocation=1,
        max_allocation=8,
        spawned_at=datetime.now(UTC),
    )


def gone(agent_id: str) -> AgentTerminated:
    return AgentTerminated(
        agent_id=agent_id, agent_type="worker", reason="test", terminated_at=datetime.now(UTC)
    )


async def test_spawns_and_terminations_mark_the_journal_only_for_what_the_listing_cannot_tell() -> (
    None
):
    """An account opened or closed as S1's registry says is told again by its listing at
    start-up: a bulk of spawns leaves the journal alone (no whole-state write at each
    release tick); a USD share, or a day's spend of an agent that leaves, is kept."""
    async with control(Settings(log_format="console", agent_memory_mb=0)) as (memory, journal):
        await memory.send(AgentSpawned(agent=worker("w1")), topology.SYSTEM3_CONTROL)
        assert not journal.pending
        await memory.send(gone("w1"), topology.SYSTEM3_CONTROL)
        assert not journal.pending

        await memory.send(AgentSpawned(agent=worker("w2")), topology.SYSTEM3_CONTROL)
        usage = LlmUsage(
            agent_id="w2",
            agent_type="worker",
            model="m",
            input_tokens=1,
            output_tokens=1,
            cost_usd=0.001,
            duration_s=0.1,
        )
        await memory.send(usage, topology.SYSTEM3_CONTROL)
        journal.pending = False  # as the release tick leaves it
        await memory.send(gone("w2"), topology.SYSTEM3_CONTROL)
        assert journal.pending  # its spend stays its system's

    shared = Settings(log_format="console", agent_memory_mb=0, budget_usd_per_day=1.0)
    async with control(shared) as (memory, journal):
        await memory.send(AgentSpawned(agent=worker("w3")), topology.SYSTEM3_CONTROL)
        assert journal.pending  # its first share of the LLM budget
        assert [c.data.agent_id for c in memory.published(topology.CONTROL)] == ["w3"]


async def test_a_batch_opens_and_closes_each_account_with_one_journal_mark() -> None:
    """A bulk spawn's batch admits each agent as one spawn would (a USD share each, one
    journal mark); a batch of terminations closes each account."""
    shared = Settings(log_format="console", agent_memory_mb=0, budget_usd_per_day=1.0)
    async with control(shared) as (memory, journal):
        agents = [worker(f"b{i}") for i in range(4)]
        await memory.send(AgentsSpawned(agents=agents), topology.SYSTEM3_CONTROL)
        assert journal.pending
        shared_to = {c.data.agent_id for c in memory.published(topology.CONTROL)}
        assert {"b0", "b1", "b2", "b3"} <= shared_to
        state = await memory.request("control", "state", System3Query())
        assert isinstance(state, System3State)
        assert {"b0", "b1", "b2", "b3"} <= {a.agent_id for a in state.allocations}

        ended = AgentsTerminated(
            agent_ids=["b0", "b1"],
            agent_type="worker",
            reason="test",
            terminated_at=datetime.now(UTC),
        )
        await memory.send(ended, topology.SYSTEM3_CONTROL)
        state = await memory.request("control", "state", System3Query())
        assert isinstance(state, System3State)
        assert {a.agent_id for a in state.allocations} & {"b0", "b1", "b2", "b3"} == {"b2", "b3"}


async def test_a_budget_is_set_and_answered_with_the_state(s3: InMemory) -> None:
    reply = await s3.request("control", "budget", SetBudget(budget=BUDGET))

    assert isinstance(reply, System3State)
    assert reply.budget == BUDGET


async def test_releasing_a_child_never_carved_is_refused_with_its_code(s3: InMemory) -> None:
    reply = await s3.request("control", "budget.release", ReleaseBudget(child="root/ghost"))

    assert isinstance(reply, ErrorReply)
    assert reply.code == "child_not_found"
    assert reply.details == {"parent": "root", "child": "root/ghost"}


async def test_an_allocation_is_granted_and_its_change_published(s3: InMemory) -> None:
    await s3.request("control", "budget", SetBudget(budget=BUDGET))
    agent = AgentInfo(
        agent_id="w1",
        agent_type="worker",
        allocation=1,
        max_allocation=8,
        spawned_at=datetime.now(UTC),
    )
    await s3.send(AgentSpawned(agent=agent), topology.SYSTEM3_CONTROL)

    request = AllocationRequest(agent_id="w1", resources=Resources(concurrency_slots=3))
    reply = await s3.ask(request, topology.SYSTEM3_CONTROL)

    assert isinstance(reply, AllocationGrant)
    assert reply.outcome == "granted"
    changes = [p.data for p in s3.published(topology.CONTROL)]
    assert [
        (c.agent_id, c.resources.concurrency_slots)
        for c in changes
        if isinstance(c, AllocationChanged)
    ][-1] == ("w1", 3)


async def test_an_allocation_for_an_unknown_agent_is_refused(s3: InMemory) -> None:
    request = AllocationRequest(agent_id="ghost", resources=Resources(concurrency_slots=1))
    reply = await s3.ask(request, topology.SYSTEM3_CONTROL)

    assert isinstance(reply, ErrorReply)
    assert reply.code == "unknown_agent"
    assert s3.published(topology.CONTROL) == []


async def test_a_body_that_is_no_envelope_is_dead_lettered_with_its_reason(s3: InMemory) -> None:
    await s3.send(b"{not json", topology.SYSTEM3_CONTROL)

    assert s3.dead_letters() == [("malformed_json", topology.SYSTEM3_CONTROL.name)]
