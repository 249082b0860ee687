"""Every viable system has its own S4: created when S5 announces a child, gone when it
retires, never created by anything a caller names; in memory (FastStream's TestRabbitBroker)
with real envelopes through the same handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker
from pydantic import TypeAdapter

from vsm.contract import topology
from vsm.contract.control import Resources
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.intelligence import (
    SCAN_REQUEST_KEY,
    Observation,
    System4Status,
    System4StatusQuery,
)
from vsm.contract.message import Message
from vsm.contract.recursion import (
    MetaSystemInfo,
    MetaSystemRetired,
    MetaSystemSpawned,
    MetaSystemTree,
    tree_key,
)
from vsm.intelligence import app, handlers
from vsm.intelligence.amplifier import Amplifier
from vsm.intelligence.metrics import create_metrics
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.settings import Settings
from vsm.intelligence.systems import ViableSystems
from vsm.intelligence.tree import TreeSync
from vsm.kit.runtime import Runtime

ANY = TypeAdapter(Envelope[Message])
BUDGET = Resources(concurrency_slots=1, llm_tokens_per_min=0, memory_mb=0)


def systems() -> ViableSystems:
    return app.build_systems(Settings(), app.build_rulesets(Settings()))


def test_a_system_exists_only_once_announced_and_goes_with_its_retirement() -> None:
    known = systems()
    assert [s.vsm_id for s in known] == ["root"]
    assert known.get("root/ghost") is None
    assert len(known) == 1  # asking created nothing
    known.spawned("root/logistics")
    child = known.get("root/logistics")
    assert child is not None
    assert child.vsm_id == "root/logistics"
    assert child.env is not known.get("root").env  # type: ignore[union-attr]
    assert child.sightings is known.sightings  # the services' heartbeats are shared
    known.retired("root/logistics")
    known.retired("root")  # the root is not S5's to retire
    known.spawned("elsewhere/x")  # not below this S4's root
    assert [s.vsm_id for s in known] == ["root"]


def test_announcements_heard_while_the_tree_is_read_are_applied_after_it() -> None:
    known = systems()
    known.spawned("root/early")  # heard before the reading began
    known.begin_sync()
    known.spawned("root/new")
    known.retired("root/old")
    known.end_sync({"root/a", "root/old"})  # read before "old" retired and "new" spawned
    assert sorted(s.vsm_id for s in known) == ["root", "root/a", "root/early", "root/new"]
    assert known.synced


def announce(event: str, vsm_id: str) -> tuple[str, str]:
    """A spawn or retirement envelope as S5 publishes it on `vsm.recursive`."""
    if event == "spawned":
        info = MetaSystemInfo(
            vsm_id=vsm_id,
            parent="root",
            purpose="test",
            budget=BUDGET,
            depth=1,
            spawned_at=datetime.now(UTC),
        )
        body: Message = MetaSystemSpawned(meta_system=info)
    else:
        body = MetaSystemRetired(vsm_id=vsm_id, parent="root", retired_at=datetime.now(UTC))
    envelope = Envelope.wrap(body, source="vsm/queen", vsm_id=vsm_id)
    return envelope.model_dump_json(), tree_key(event, "root")


@pytest.fixture
async def s4() -> AsyncIterator[tuple[TestRabbitBroker, handlers.S4, Runtime]]:
    settings = Settings(instance_id="intelligence-1", log_format="console")
    runtime = Runtime("intelligence", settings)
    rulesets = app.build_rulesets(settings)
    known = app.build_systems(settings, rulesets)
    metrics = create_metrics(runtime.telemetry.registry, known.__len__)
    wired = handlers.S4(
        known, Outlets(runtime.bus, Amplifier(None, model="m", max_pending=1)), metrics, rulesets
    )
    handlers.register(runtime.bus, wired)
    async with TestRabbitBroker(runtime.broker) as broker:
        yield broker, wired, runtime


def intake(broker: TestRabbitBroker, runtime: Runtime) -> Callable[[str], Awaitable[Any]]:
    """Into S4's intake queue. In memory a queue is reached through its first binding only
    (the others are declared on the real broker), and the handler is chosen by type."""
    exchange = runtime.bus.exchange(topology.INTELLIGENCE)

    async def publish(body: str) -> Any:
        return await broker.publish(body, exchange=exchange, routing_key=SCAN_REQUEST_KEY)

    return publish


async def status(broker: TestRabbitBroker, runtime: Runtime, vsm_id: str) -> Any:
    query = Envelope.wrap(System4StatusQuery(), source="vsm/test", vsm_id=vsm_id)
    reply = await broker.request(
        query.model_dump_json(),
        exchange=runtime.bus.exchange(topology.REQUESTS),
        routing_key="intelligence.status",
    )
    return ANY.validate_json(reply.body).data


async def test_a_thousand_spawns_and_retirements_leave_no_state_behind(
    s4: tuple[TestRabbitBroker, handlers.S4, Runtime],
) -> None:
    broker, wired, runtime = s4
    into = intake(broker, runtime)
    for cycle in range(1000):
        child = f"root/c{cycle}"
        body, _ = announce("spawned", child)
        await into(body)
        seen = Observation(source="radar", event_type="blip", values={"v": float(cycle)})
        sent = Envelope.wrap(seen, source="vsm/test", vsm_id=child)
        await into(sent.model_dump_json())
        if cycle % 100 == 0:
            own = await status(broker, runtime, child)
            assert isinstance(own, System4Status)
            assert (own.vsm_id, own.series) == (child, 1)
        body, _ = announce("retired", child)
        await into(body)
    assert [s.vsm_id for s in wired.systems] == ["root"]
    assert wired.systems.get("root").env.series == {}  # type: ignore[union-attr]
    gone = await status(broker, runtime, "root/c999")
    assert isinstance(gone, ErrorReply)
    assert gone.code == "meta_system_not_found"


async def test_messages_and_queries_about_an_unknown_system_create_nothing(
    s4: tuple[TestRabbitBroker, handlers.S4, Runtime],
) -> None:
    broker, wired, runtime = s4
    into = intake(broker, runtime)
    for i in range(50):
        stranger = f"root/stranger-{i}"
        seen = Envelope.wrap(Observation(source="x", event_type="y"), source="t", vsm_id=stranger)
        await into(seen.model_dump_json())
        refusal = await status(broker, runtime, stranger)
        assert isinstance(refusal, ErrorReply)
        assert refusal.code == "meta_system_not_found"
    assert len(wired.systems) == 1
    registry = runtime.telemetry.registry
    skipped = registry.get_sample_value(
        "vsm_s4_unknown_system_total", {"message": Observation.TYPE}
    )
    assert skipped == 50
    assert registry.get_sample_value("vsm_s4_systems") == 1


class Queen:
    """S5's side of `queen.meta.list` over a tree given as data (the walk is what is tested)."""

    def __init__(self, tree: dict[str, list[str]]) -> None:
        self.tree = tree
        self.asked: list[str] = []

    async def query(
        self, service: str, operation: str, body: Any, expected: Any, *, vsm_id: str
    ) -> Any:
        assert (service, operation) == ("queen", "meta.list")
        self.asked.append(vsm_id)
        children = [
            MetaSystemInfo(
                vsm_id=c, parent=vsm_id, purpose="p", budget=BUDGET, depth=c.count("/"),
                spawned_at=datetime.now(UTC),
            )
            for c in self.tree.get(vsm_id, [])
        ]  # fmt: skip
        return MetaSystemTree(vsm_id=vsm_id, children=children)


async def test_start_up_walks_s5s_tree_from_the_root_once() -> None:
    queen = Queen({"root": ["root/a", "root/b"], "root/a": ["root/a/x"]})
    known = systems()
    sync = TreeSync(queen, known)  # type: ignore[arg-type]
    await sync.once()
    await sync.once()
    assert sorted(s.vsm_id for s in known) == ["root", "root/a", "root/a/x", "root/b"]
    assert sorted(queen.asked) == ["root", "root/a", "root/a/x", "root/b"]
