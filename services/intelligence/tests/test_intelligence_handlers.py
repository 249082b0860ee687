"""S4's handlers in memory (vsm.kit.testing): decode, call S4, reply and publish, refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from vsm.contract import topology
from vsm.contract.control import Resources
from vsm.contract.errors import ErrorReply
from vsm.contract.intelligence import ScanRequest, ScanResult, System4Status, System4StatusQuery
from vsm.contract.recursion import MetaSystemInfo, MetaSystemSpawned
from vsm.intelligence import app, handlers
from vsm.intelligence.amplifier import Amplifier
from vsm.intelligence.metrics import create_metrics
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.settings import Settings
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory


@pytest.fixture
async def s4() -> AsyncIterator[InMemory]:
    settings = Settings(log_format="console")
    runtime = Runtime("intelligence", settings)
    rulesets = app.build_rulesets(settings)
    systems = app.build_systems(settings, rulesets)
    amplifier = Amplifier(None, model="none", max_pending=1)
    metrics = create_metrics(runtime.telemetry.registry, systems.__len__)
    handlers.register(
        runtime.bus, handlers.S4(systems, Outlets(runtime.bus, amplifier), metrics, rulesets)
    )
    async with InMemory(runtime.bus) as memory:
        yield memory


async def test_a_requested_scan_is_answered_and_published(s4: InMemory) -> None:
    reply = await s4.request("intelligence", "scan", ScanRequest(reason="operator"))

    assert isinstance(reply, ScanResult)
    assert (reply.trigger, reply.reason) == ("requested", "operator")
    [published] = s4.published(topology.INTELLIGENCE)
    assert published.data == reply


async def test_a_question_about_a_system_s4_does_not_keep_is_refused(s4: InMemory) -> None:
    query = System4StatusQuery()
    reply = await s4.request("intelligence", "status", query, vsm_id="root/ghost")

    assert isinstance(reply, ErrorReply)
    assert reply.code == "meta_system_not_found"
    assert s4.published() == []


async def test_a_spawned_child_gets_an_s4_of_its_own(s4: InMemory) -> None:
    child = MetaSystemInfo(
        vsm_id="root/logistics",
        parent="root",
        purpose="move things",
        budget=Resources(concurrency_slots=1),
        depth=1,
        spawned_at=datetime.now(UTC),
    )
    await s4.send(MetaSystemSpawned(meta_system=child), topology.SYSTEM4_INTELLIGENCE)

    reply = await s4.request("intelligence", "status", System4StatusQuery(), vsm_id=child.vsm_id)
    assert isinstance(reply, System4Status)
    assert reply.vsm_id == "root/logistics"


async def test_a_scan_for_no_known_system_is_dead_lettered(s4: InMemory) -> None:
    await s4.send(ScanRequest(), topology.SYSTEM4_INTELLIGENCE, vsm_id="root/ghost")

    assert s4.dead_letters() == [("meta_system_not_found", topology.SYSTEM4_INTELLIGENCE.name)]
