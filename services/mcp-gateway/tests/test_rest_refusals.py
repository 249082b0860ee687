"""The REST routes in memory (vsm.kit.testing): a system's refusal, raised in its handler,
answers the route with the `ErrorBody` and status its code stands for. The systems are
stood in for by handlers of the test's own on their request queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faststream.rabbit.response import RabbitResponse
from litestar import Litestar
from litestar.testing import AsyncTestClient

from vsm.contract import topology
from vsm.contract.control import SetBudget
from vsm.contract.coordination import CoordinateMessage
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.policy import PolicyQuery
from vsm.kit.dead_letters import DeadLetters
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory
from vsm.mcp_gateway import rest
from vsm.mcp_gateway.rest.common import EXCEPTION_HANDLERS
from vsm.mcp_gateway.settings import Settings


@pytest.fixture
async def gateway() -> AsyncIterator[AsyncTestClient[Litestar]]:
    runtime = Runtime("mcp-gateway", Settings(log_format="console"))
    bus = runtime.bus

    @bus.handle(topology.requests_queue("control"), SetBudget)
    async def over_budget(envelope: Envelope[SetBudget]) -> RabbitResponse:
        raise Refused("over_budget", "more than the parent has free", {"kinds": ["memory_mb"]})

    @bus.handle(topology.requests_queue("queen"), PolicyQuery)
    async def no_policy(envelope: Envelope[PolicyQuery]) -> RabbitResponse:
        raise Refused("policy_not_found", "no governance policy is stored for root")

    @bus.handle(topology.requests_queue("coordinator"), CoordinateMessage)
    async def too_many(envelope: Envelope[CoordinateMessage]) -> RabbitResponse:
        raise Refused("rate_limited", "too many notes from w1 to w2", {"rate_per_s": 1})

    app = Litestar(
        rest.CONTROLLERS,
        dependencies=rest.dependencies(bus, DeadLetters(bus)),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    async with InMemory(bus), AsyncTestClient(app) as client:
        yield client


async def test_a_refusal_is_the_error_body_with_its_details(
    gateway: AsyncTestClient[Litestar],
) -> None:
    answer = await gateway.put("/api/vsm/system/3/budget", json={"concurrency_slots": 1})

    assert answer.status_code == 422
    assert answer.json() == {
        "error": "over_budget",
        "message": "more than the parent has free",
        "details": {"kinds": ["memory_mb"]},
    }


async def test_a_refused_lookup_is_a_404(gateway: AsyncTestClient[Litestar]) -> None:
    answer = await gateway.get("/api/vsm/policies/governance")

    assert answer.status_code == 404
    assert answer.json()["error"] == "policy_not_found"


async def test_too_many_notes_is_the_senders_doing_a_429(
    gateway: AsyncTestClient[Litestar],
) -> None:
    note = {"from_agent": "w1", "to_agent": "w2", "topic": "handover"}
    answer = await gateway.post("/api/vsm/coordination/messages", json=note)

    assert answer.status_code == 429
    assert answer.json()["details"] == {"rate_per_s": 1}


def test_a_type_no_live_host_offers_is_a_conflict() -> None:
    """A spawn of a type offered before, by no live host now (operations' `no_host_for_type`),
    is a conflict with the system's state (409), as the agent-hosts design says."""
    from vsm.mcp_gateway.rest.common import status_of

    assert status_of("no_host_for_type") == 409
    assert status_of("invalid_agent_type") == 422
