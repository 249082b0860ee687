"""The bot's answers: what each command asks of the system (one AMQP message to the system
that owns it), as the text for the chat.

Every function returns the text for the chat; failures of the system (timeouts, refusals)
become a sentence too, so a person always gets an answer and the bot keeps running.
"""

from __future__ import annotations

from collections.abc import Awaitable

import structlog

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.operations import AgentDescription, AgentList, ListAgents, SpawnAgent
from vsm.contract.policy import PolicyList, PolicyListQuery, PolicyQuery, PolicyReply
from vsm.contract.system5 import System5Query, System5State
from vsm.kit.bus import Bus, NotRoutable, Publisher, RequestFailed, UnexpectedReply
from vsm.kit.rpc import RequestTimeout
from vsm.telegram_gateway import reports
from vsm.telegram_gateway.commands import PolicyLookup, Signal, Spawn

log = structlog.get_logger("vsm.telegram.answers")


FAILURES = (RequestFailed, RequestTimeout, NotRoutable, UnexpectedReply)


def failure(error: Exception) -> str:
    """A sentence saying which part of the system did not answer, or what it refused."""
    if isinstance(error, RequestFailed):
        return f"The system said no ({error.reply.code}): {error.reply.message}"
    if isinstance(error, RequestTimeout):
        return "The system did not answer in time; please try again in a moment."
    log.warning("telegram_command_failed", error=repr(error))
    return "That part of the system is not available right now."


async def answer(work: Awaitable[str]) -> str:
    """The text of `work`, or a sentence saying which part of the system did not answer."""
    try:
        return await work
    except FAILURES as error:
        return failure(error)


async def status(bus: Bus) -> str:
    return reports.status_report(await bus.query("queen", "status", StatusQuery(), SystemStatus))


async def viability(bus: Bus) -> str:
    state = await bus.query("queen", "state", System5Query(), System5State)
    return reports.viability_report(state)


async def agents(bus: Bus) -> str:
    listed = await bus.query("operations", "list", ListAgents(), AgentList)
    return reports.agents_report(listed.agents)


async def spawn(bus: Bus, intent: Spawn) -> str:
    reply = await bus.query(
        "operations", "spawn", SpawnAgent(agent_type=intent.agent_type), AgentDescription
    )
    return reports.spawned_report(reply.agent)


async def signal(algedonic: Publisher, intent: Signal, chat_id: int) -> str:
    """Straight onto `vsm.algedonic`: the algedonic path never waits on anyone's answer."""
    felt = AlgedonicSignal(
        kind=intent.kind,
        intensity=intent.intensity,
        origin=f"telegram-gateway/chat/{chat_id}",
        reason="operator_report",
    )
    sent = await algedonic.publish(felt)
    return f"{intent.kind.capitalize()} {intent.intensity:g} sent to S5 (signal {sent.id})."


async def policy(bus: Bus, intent: PolicyLookup) -> str:
    if intent.policy_type is None:
        listed = await bus.query("queen", "policy.list", PolicyListQuery(), PolicyList)
        return reports.policies_report(listed)
    query = PolicyQuery(policy_type=intent.policy_type)
    return reports.policy_report(
        (await bus.query("queen", "policy.get", query, PolicyReply)).record
    )
