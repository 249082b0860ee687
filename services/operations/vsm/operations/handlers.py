"""Operations' request handlers (registry operations on `vsm.requests`): decode, call, reply."""

from __future__ import annotations

from typing import Any

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.operations import (
    AgentDescription,
    AgentList,
    AgentTypes,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
    SpawnAgent,
    TerminateAgent,
)
from vsm.kit.bus import Bus
from vsm.operations.agents.catalog import describe_types
from vsm.operations.host import check_size
from vsm.operations.registry import Rejected
from vsm.operations.system1 import System1


def register(bus: Bus, s1: System1, ready_timeout_s: float) -> None:
    requests = topology.requests_queue("operations")

    def refused(rejected: Rejected, cause: Envelope[Any]) -> RabbitResponse:
        error = ErrorReply(code=rejected.code, message=rejected.message, details=rejected.details)
        return bus.reply(error, cause=cause)

    @bus.handle(requests, SpawnAgent)
    async def on_spawn(envelope: Envelope[SpawnAgent]) -> RabbitResponse:
        check_size(bus.delivery().body)
        await s1.wait_ready(ready_timeout_s)
        try:
            request = envelope.data
            agent = await s1.spawn(
                request.agent_type, request.config, request.name, envelope.vsm_id
            )
        except Rejected as rejected:
            return refused(rejected, envelope)
        return bus.reply(AgentDescription(agent=agent), cause=envelope)

    @bus.handle(requests, GetAgent)
    async def on_get(envelope: Envelope[GetAgent]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        try:
            agent = s1.registry.find(envelope.data.agent_id)
        except Rejected as rejected:
            return refused(rejected, envelope)
        return bus.reply(AgentDescription(agent=agent), cause=envelope)

    @bus.handle(requests, ListAgents)
    async def on_list(envelope: Envelope[ListAgents]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        query = envelope.data
        page, total = s1.registry.page(
            query.agent_type, query.include_terminated, query.offset, query.limit
        )
        return bus.reply(AgentList(agents=page, total=total), cause=envelope)

    @bus.handle(requests, TerminateAgent)
    async def on_terminate(envelope: Envelope[TerminateAgent]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        try:
            agent = await s1.terminate(envelope.data.agent_id, envelope.data.reason)
        except Rejected as rejected:
            return refused(rejected, envelope)
        return bus.reply(AgentDescription(agent=agent), cause=envelope)

    @bus.handle(requests, DescribeAgentTypes)
    async def on_types(envelope: Envelope[DescribeAgentTypes]) -> RabbitResponse:
        return bus.reply(AgentTypes(types=describe_types()), cause=envelope)
