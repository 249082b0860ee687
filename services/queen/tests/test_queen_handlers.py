"""S5's request handlers in memory (vsm.kit.testing): decode, call S5, reply and publish,
refuse. The policy log is replayed empty here; replaying it is the integration suite's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vsm.contract import topology
from vsm.contract.errors import ErrorReply
from vsm.contract.health import StatusQuery
from vsm.contract.policy import PolicyChanged, PolicyQuery, PolicyReply, StorePolicy
from vsm.contract.system5 import TraceQuery
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory
from vsm.queen import app, handlers
from vsm.queen.approvals import Desk
from vsm.queen.delegations import Delegations
from vsm.queen.journal import PolicyJournal
from vsm.queen.meta import MetaTree
from vsm.queen.metrics import create_metrics
from vsm.queen.outlets import Outlets
from vsm.queen.proposals import Proposals
from vsm.queen.recursion import MetaSystems
from vsm.queen.settings import Settings
from vsm.queen.structure import Structure
from vsm.queen.trail import Trail


@pytest.fixture
async def s5() -> AsyncIterator[InMemory]:
    settings = Settings(log_format="console")
    runtime = Runtime("queen", settings)
    system5 = app.build_system5(settings)
    metrics = create_metrics(runtime.telemetry.registry)
    tree = MetaTree(root=settings.vsm_id)
    journal = PolicyJournal(runtime.bus, system5.store, tree, metrics, settings.instance_id)
    journal.opened.set()  # an empty policy log, replayed
    meta = MetaSystems(runtime.bus, system5, journal, tree, settings.parent_namespace)
    outlets = Outlets(runtime.bus, system5, journal, metrics, None)
    proposals = Proposals(runtime.bus, journal, Desk(max_pending=settings.approval_max_pending))
    grown = Structure(runtime.bus, journal, meta, Delegations())
    handlers.register(outlets, meta, proposals, Trail(), "rules only", grown=grown)
    async with InMemory(runtime.bus) as memory:
        yield memory


THROTTLE = StorePolicy(
    policy_type="throttle", policy={"limits": [{"target": "*", "max_rate_per_s": 5}]}
)


async def test_a_stored_policy_is_versioned_and_broadcast(s5: InMemory) -> None:
    reply = await s5.request("queen", "policy.store", THROTTLE)

    assert isinstance(reply, PolicyReply)
    assert (reply.record.policy_type, reply.record.version) == ("throttle", 1)
    [changed] = s5.published(topology.POLICY)
    assert changed.data == PolicyChanged(record=reply.record)


async def test_an_invalid_policy_is_refused_with_each_reason(s5: InMemory) -> None:
    invalid = StorePolicy(policy_type="throttle", policy={"limits": "many"})
    reply = await s5.request("queen", "policy.store", invalid)

    assert isinstance(reply, ErrorReply)
    assert reply.code == "invalid_policy"
    assert reply.details["reasons"]
    assert s5.published(topology.POLICY) == []


async def test_a_policy_never_stored_is_not_found(s5: InMemory) -> None:
    reply = await s5.request("queen", "policy.get", PolicyQuery(policy_type="governance"))

    assert isinstance(reply, ErrorReply)
    assert reply.code == "policy_not_found"


async def test_questions_about_unknown_systems_and_messages_are_refused(s5: InMemory) -> None:
    status = await s5.request("queen", "status", StatusQuery(), vsm_id="root/ghost")
    trace = await s5.request("queen", "trace", TraceQuery(message_id="nothing-like-it"))

    assert isinstance(status, ErrorReply)
    assert isinstance(trace, ErrorReply)
    assert (status.code, trace.code) == ("meta_system_not_found", "message_not_found")
