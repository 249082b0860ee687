"""S2's handlers in memory (vsm.kit.testing): decode, call System 2, reply or publish, refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from vsm.contract import topology
from vsm.contract.coordination import (
    CoordinateMessage,
    CoordinationNote,
    CoordinationReceipt,
    OscillationIndex,
    QueuePressure,
    System2Query,
    System2State,
)
from vsm.contract.errors import ErrorReply
from vsm.contract.operations import AgentInfo, AgentSpawned, AgentsSpawned, AgentsTerminated
from vsm.coordinator import app, handlers
from vsm.coordinator.directory import Directory
from vsm.coordinator.dispatcher import Dispatcher
from vsm.coordinator.holding import Holding
from vsm.coordinator.metrics import create_metrics
from vsm.coordinator.outlets import Outlets
from vsm.coordinator.settings import Settings
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory


def running(agent_id: str) -> AgentSpawned:
    agent = AgentInfo(
        agent_id=agent_id,
        agent_type="worker",
        allocation=2,
        max_allocation=16,
        spawned_at="2025-01-01T00:00:00Z",
    )
    return AgentSpawned(agent=agent)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wired(settings: Settings, clock: Clock) -> tuple[InMemory, Callable[[], Awaitable[None]]]:
    """S2's handlers on an in-memory bus, and its periodic report (on `clock`)."""
    runtime = Runtime("coordinator", settings)
    bus, metrics = runtime.bus, create_metrics(runtime.telemetry.registry)
    system2 = app.build_system2(settings)
    directory = Directory(bus, system2.fleet, settings.registry_retry_s)
    decisions = app.build_journal(bus, system2, settings)
    decisions.opened.set()  # an empty journal, read back
    dispatcher = Dispatcher(
        bus,
        system2,
        directory,
        metrics,
        Holding(bus, 1),
        journal=decisions,
        timeout_s=1.0,
        grace_s=0.1,
    )
    outlets = Outlets(bus, metrics, settings.oscillation_window_s)
    report = handlers.register(
        bus, system2, dispatcher, directory, outlets, journal=decisions, clock=clock, refresh_s=60
    )
    return InMemory(bus), report


@pytest.fixture
async def s2() -> AsyncIterator[InMemory]:
    memory, _ = wired(Settings(log_format="console", note_rate_per_s=1), Clock())
    async with memory:
        for agent_id in ("w1", "w2"):
            await memory.send(running(agent_id), topology.SYSTEM2_COORDINATION)
        yield memory


async def test_an_unchanged_report_is_repeated_only_at_the_refresh() -> None:
    clock = Clock()
    memory, report = wired(Settings(log_format="console"), clock)

    def reports() -> list[str]:
        kinds = (OscillationIndex, QueuePressure)
        return [p.routing_key for p in memory.published() if isinstance(p.data, kinds)]

    async with memory:
        await memory.send(running("w1"), topology.SYSTEM2_COORDINATION)
        await report()
        assert reports() == ["s2.oscillation", "s2.pressure"]
        clock.now = 59.0
        await report()
        assert len(reports()) == 2  # nothing changed: nothing said
        await memory.send(running("w2"), topology.SYSTEM2_COORDINATION)
        await report()
        assert reports()[2:] == ["s2.pressure"]  # two agents now; the index is still 0
        clock.now = 120.0
        await report()
        assert reports()[3:] == ["s2.oscillation", "s2.pressure"]  # the refresh


NOTE = CoordinateMessage(from_agent="w1", to_agent="w2", topic="handover")


async def test_a_note_between_running_agents_is_delivered_with_a_receipt(s2: InMemory) -> None:
    receipt = await s2.request("coordinator", "coordinate", NOTE)

    assert isinstance(receipt, CoordinationReceipt)
    [note] = s2.published(topology.COORDINATION)
    assert isinstance(note.data, CoordinationNote)
    assert (note.data.to_agent, note.envelope.id) == ("w2", receipt.note_id)


async def test_too_many_notes_between_one_pair_are_refused(s2: InMemory) -> None:
    await s2.request("coordinator", "coordinate", NOTE)
    refused = await s2.request("coordinator", "coordinate", NOTE)

    assert isinstance(refused, ErrorReply)
    assert refused.code == "rate_limited"
    assert len(s2.published(topology.COORDINATION)) == 1


async def test_the_state_counts_the_running_agents_and_delivered_notes(s2: InMemory) -> None:
    await s2.request("coordinator", "coordinate", NOTE)
    state = await s2.request("coordinator", "state", System2Query())

    assert isinstance(state, System2State)
    assert state.capacity == {"w1": 2, "w2": 2}
    assert state.notes_delivered == 1


async def test_a_batch_of_spawns_and_one_of_terminations_change_each_agent(s2: InMemory) -> None:
    agents = [running(f"b{i}").agent for i in range(5)]
    await s2.send(AgentsSpawned(agents=agents), topology.SYSTEM2_COORDINATION)
    state = await s2.request("coordinator", "state", System2Query())
    assert isinstance(state, System2State)
    assert set(state.capacity) == {"w1", "w2", *(a.agent_id for a in agents)}

    ended = AgentsTerminated(
        agent_ids=["b0", "b1", "w1"],
        agent_type="worker",
        reason="test",
        terminated_at=datetime.now(UTC),
    )
    await s2.send(ended, topology.SYSTEM2_COORDINATION)
    state = await s2.request("coordinator", "state", System2Query())
    assert isinstance(state, System2State)
    assert set(state.capacity) == {"w2", "b2", "b3", "b4"}
