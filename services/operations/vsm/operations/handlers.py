"""Operations' request handlers (registry operations on `vsm.requests`): decode, call, reply;
a `Refused` from the registry is the request's answer (the kit replies its `ErrorReply`)."""

from __future__ import annotations

import time

import structlog
from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.agent_types import HostRegistered, RegisterHost
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused, Unprocessable
from vsm.contract.operations import (
    MAX_BULK_PAYLOAD_BYTES,
    AgentDescription,
    AgentInfo,
    AgentList,
    AgentTypes,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
    RehomeAgents,
    SpawnAgent,
    SpawnAgents,
    SpawnOutcome,
    SpawnOutcomes,
    SpawnRefusal,
    TerminateAgent,
    TerminateAgents,
    TerminateOutcome,
    TerminateOutcomes,
)
from vsm.kit.bus import Bus
from vsm.operations.agents.catalog import describe_types
from vsm.operations.host import check_size
from vsm.operations.system1 import System1

log = structlog.get_logger("vsm.operations.handlers")


def register(bus: Bus, s1: System1, ready_timeout_s: float) -> None:
    requests = topology.requests_queue("operations")

    @bus.handle(requests, SpawnAgent)
    async def on_spawn(envelope: Envelope[SpawnAgent]) -> RabbitResponse:
        check_size(bus.delivery().body)
        await s1.wait_ready(ready_timeout_s)
        request = envelope.data
        agent = await s1.spawn(request.agent_type, request.config, request.name, envelope.vsm_id)
        return bus.reply(AgentDescription(agent=agent), cause=envelope)

    @bus.handle(requests, SpawnAgents)
    async def on_spawn_many(envelope: Envelope[SpawnAgents]) -> RabbitResponse:
        check_bulk_size(bus.delivery().body)
        await s1.wait_ready(ready_timeout_s)
        spawned = await s1.spawn_many(envelope.data.agents, envelope.vsm_id)
        return bus.reply(SpawnOutcomes(outcomes=outcomes(spawned)), cause=envelope)

    @bus.handle(requests, GetAgent)
    async def on_get(envelope: Envelope[GetAgent]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        agent = s1.registry.find(envelope.data.agent_id)
        hosts = None
        if agent.pool is not None:
            hosts = len(s1.offers.live_hosts(agent.agent_type, time.monotonic()))
        return bus.reply(AgentDescription(agent=agent, hosts=hosts), cause=envelope)

    @bus.handle(requests, ListAgents)
    async def on_list(envelope: Envelope[ListAgents]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        query = envelope.data
        page, total = s1.registry.page(
            query.agent_type, query.include_terminated, query.offset, query.limit
        )
        return bus.reply(AgentList(agents=page, total=total), cause=envelope)

    @bus.handle(requests, TerminateAgents)
    async def on_terminate_many(envelope: Envelope[TerminateAgents]) -> RabbitResponse:
        check_bulk_size(bus.delivery().body)
        await s1.wait_ready(ready_timeout_s)
        request = envelope.data
        ended = await s1.terminate_many(request.agent_ids, request.reason)
        reply = TerminateOutcomes(outcomes=terminate_outcomes(request.agent_ids, ended))
        return bus.reply(reply, cause=envelope)

    @bus.handle(requests, TerminateAgent)
    async def on_terminate(envelope: Envelope[TerminateAgent]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        agent = await s1.terminate(envelope.data.agent_id, envelope.data.reason)
        return bus.reply(AgentDescription(agent=agent), cause=envelope)

    @bus.handle(requests, RehomeAgents)
    async def on_rehome(envelope: Envelope[RehomeAgents]) -> RabbitResponse:
        await s1.wait_ready(ready_timeout_s)
        request = envelope.data
        moved = await s1.rehome(
            envelope.vsm_id, request.agent_type, request.to_vsm_id, request.reason, envelope
        )
        return bus.reply(AgentList(agents=moved, total=len(moved)), cause=envelope)

    @bus.handle(requests, DescribeAgentTypes)
    async def on_types(envelope: Envelope[DescribeAgentTypes]) -> RabbitResponse:
        offers = s1.offers
        hosted = [*offers.own.values(), *offers.offered(time.monotonic())]
        listed = [*describe_types(), *(manifest.info() for manifest in hosted)]
        return bus.reply(AgentTypes(types=listed), cause=envelope)

    @bus.handle(requests, RegisterHost)
    async def on_register_host(envelope: Envelope[RegisterHost]) -> RabbitResponse:
        offer = envelope.data
        try:
            accepted = s1.offers.register(offer.instance, offer.offers, time.monotonic())
        except Refused as refused:
            log.error("agent_host_refused", instance=offer.instance, error=refused.message)
            raise
        return bus.reply(HostRegistered(accepted=accepted), cause=envelope)


def check_bulk_size(body: bytes) -> None:
    """A bulk request within `MAX_BULK_PAYLOAD_BYTES`; else dead-lettered, unprocessable."""
    if len(body) > MAX_BULK_PAYLOAD_BYTES:
        raise Unprocessable(
            "payload_too_large", f"{len(body)} bytes; the limit is {MAX_BULK_PAYLOAD_BYTES}"
        )


def refusal(refused: Refused) -> SpawnRefusal:
    return SpawnRefusal(**refused.reply.model_dump())


def terminate_outcomes(
    agent_ids: list[str], ended: list[AgentInfo | Refused]
) -> list[TerminateOutcome]:
    return [
        TerminateOutcome(index=index, agent_id=agent_id, agent=agent)
        if isinstance(agent, AgentInfo)
        else TerminateOutcome(index=index, agent_id=agent_id, error=refusal(agent))
        for index, (agent_id, agent) in enumerate(zip(agent_ids, ended, strict=True))
    ]


def outcomes(spawned: list[AgentInfo | Refused]) -> list[SpawnOutcome]:
    return [
        SpawnOutcome(index=index, agent=agent)
        if isinstance(agent, AgentInfo)
        else SpawnOutcome(index=index, error=refusal(agent))
        for index, agent in enumerate(spawned)
    ]
