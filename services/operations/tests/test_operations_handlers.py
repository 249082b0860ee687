"""S1's request handlers in memory (vsm.kit.testing): decode, call System 1, reply, refuse.

Spawning a valid agent starts its consumer on the broker: that stays in the integration suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vsm.contract import topology
from vsm.contract.errors import ErrorReply
from vsm.contract.operations import (
    AgentList,
    AgentTypes,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
    SpawnAgent,
    TerminateAgents,
    TerminateOutcomes,
)
from vsm.kit.egress import EgressPolicy
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory
from vsm.operations import handlers
from vsm.operations.host import AgentHost
from vsm.operations.settings import Settings
from vsm.operations.system1 import System1


@pytest.fixture
async def s1() -> AsyncIterator[InMemory]:
    settings = Settings(log_format="console")
    runtime = Runtime("operations", settings)
    host = AgentHost(runtime.bus, runtime.direct, None, 60.0, settings.instance_id)
    system1 = System1(runtime.bus, host, EgressPolicy())
    system1.ready.set()  # the registry log replayed: nothing in it
    handlers.register(runtime.bus, system1, ready_timeout_s=1.0)
    async with InMemory(runtime.bus) as memory:
        yield memory


async def test_an_unknown_agent_type_is_refused_and_nothing_is_logged(s1: InMemory) -> None:
    reply = await s1.request("operations", "spawn", SpawnAgent(agent_type="nonesuch"))

    assert isinstance(reply, ErrorReply)
    assert reply.code == "invalid_agent_type"
    assert "worker" in reply.details["known"]
    assert s1.published(topology.S1_REGISTRY) == []


async def test_an_agent_that_is_not_running_is_not_found(s1: InMemory) -> None:
    reply = await s1.request("operations", "get", GetAgent(agent_id="ghost"))

    assert isinstance(reply, ErrorReply)
    assert (reply.code, reply.details) == ("agent_not_found", {"agent_id": "ghost"})


async def test_the_registry_lists_no_agent_before_any_spawn(s1: InMemory) -> None:
    reply = await s1.request("operations", "list", ListAgents())

    assert reply == AgentList(agents=[], total=0)


async def test_every_agent_type_is_described(s1: InMemory) -> None:
    reply = await s1.request("operations", "types", DescribeAgentTypes())

    assert isinstance(reply, AgentTypes)
    assert "worker" in {t.agent_type for t in reply.types}


async def test_a_spawn_of_the_wrong_shape_is_dead_lettered_with_its_reason(s1: InMemory) -> None:
    await s1.send(
        b'{"specversion": "1.0", "type": "vsm.s1.agent.spawn.v1"}',
        topology.REQUESTS,
        routing_key=topology.request_key("operations", "spawn"),
    )

    assert s1.dead_letters() == [("invalid_schema", topology.requests_queue("operations").name)]


async def test_a_bulk_terminate_of_unknown_ids_answers_each_and_logs_nothing(s1: InMemory) -> None:
    ids = ["ghost", "nobody", "ghost"]
    reply = await s1.request("operations", "terminate-many", TerminateAgents(agent_ids=ids))

    assert isinstance(reply, TerminateOutcomes)
    assert [(o.index, o.agent_id, o.agent) for o in reply.outcomes] == [
        (0, "ghost", None),
        (1, "nobody", None),
        (2, "ghost", None),
    ]
    assert {o.error.code for o in reply.outcomes if o.error} == {"agent_not_found"}
    assert s1.published(topology.S1_REGISTRY) == []


async def test_a_bulk_terminate_without_ids_is_dead_lettered_with_its_reason(
    s1: InMemory,
) -> None:
    valid = s1.envelope(TerminateAgents(agent_ids=["ghost"])).model_dump_json()
    await s1.send(
        valid.replace('["ghost"]', "[]").encode(),
        topology.REQUESTS,
        routing_key=topology.request_key("operations", "terminate-many"),
    )

    assert s1.dead_letters() == [("invalid_schema", topology.requests_queue("operations").name)]
