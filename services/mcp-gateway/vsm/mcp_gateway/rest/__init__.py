"""The REST API (`/api/vsm/...`): one controller per VSM system or resource, each route one
AMQP request (or publish) to the system that owns the answer."""

from __future__ import annotations

from litestar.di import Provide

from vsm.kit.bus import Bus
from vsm.kit.dead_letters import DeadLetters
from vsm.mcp_gateway.rest import (
    agents,
    approvals,
    common,
    control,
    coordination,
    dead_letters,
    intelligence,
    operators,
    policy,
    recursion,
    status,
)

CONTROLLERS = [
    status.SystemController,
    coordination.System2Controller,
    control.System3Controller,
    intelligence.System4Controller,
    policy.System5Controller,
    agents.AgentsController,
    recursion.RecursionController,
    operators.OperatorsController,
    approvals.ApprovalsController,
    dead_letters.DeadLettersController,
]


def dependencies(
    bus: Bus,
    letters: DeadLetters,
    bulk_max: int = 1000,
    bulk_timeout_s: float = 120.0,
    bulk_terminate_max: int = 1000,
) -> dict[str, Provide]:
    """What the routes are given by name: the bus, the agents, the dead letters."""
    return (
        common.dependencies(bus)
        | agents.dependencies(bus, bulk_max, bulk_timeout_s, bulk_terminate_max)
        | dead_letters.dependencies(letters)
    )
