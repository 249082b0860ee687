"""S3*: audits sent straight to agents' own queues, bypassing S2, all at once.

Each `AuditRequest` goes on `vsm.s1.commands` with key `audit.<agent_id>.audit` (the agent's
route into its partition) with
its own correlation id and the commission's timeout. An agent that does not answer in time,
has no route any more, or answers with an error counts as `timeout`: S3 could not see it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vsm.contract import topology
from vsm.contract.control import AgentAudit
from vsm.contract.operations import AuditReport, AuditRequest, AuditType, audit_key
from vsm.kit.bus import Bus, NotRoutable, RequestFailed, UnexpectedReply, expect
from vsm.kit.rpc import RequestTimeout


async def audit_one(
    bus: Bus, agent_id: str, audit_type: AuditType, timeout_s: float, cause: Any
) -> AgentAudit:
    request = AuditRequest(audit_type=audit_type)
    try:
        reply = await bus.ask(
            request,
            exchange=topology.S1_COMMANDS,
            routing_key=audit_key(agent_id),
            cause=cause,
            timeout=timeout_s,
        )
        report = expect(reply, AuditReport)
    except RequestTimeout:
        return AgentAudit(agent_id=agent_id, outcome="timeout")
    except NotRoutable:
        return AgentAudit(agent_id=agent_id, outcome="timeout", report={"error": "no such agent"})
    except (RequestFailed, UnexpectedReply) as error:
        return AgentAudit(agent_id=agent_id, outcome="timeout", report={"error": str(error)})
    return AgentAudit(agent_id=agent_id, outcome="answered", report=report.report)


async def audit_agents(
    bus: Bus, agent_ids: list[str], audit_type: AuditType, timeout_s: float, cause: Any = None
) -> list[AgentAudit]:
    return list(
        await asyncio.gather(
            *(audit_one(bus, agent, audit_type, timeout_s, cause) for agent in agent_ids)
        )
    )
