"""What S3 tells about itself: its state, each system's headroom, and audit reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from vsm.contract.control import (
    AgentAllocation,
    AgentAudit,
    AuditFindings,
    LlmSpend,
    ResourceHeadroom,
    System3State,
)
from vsm.contract.operations import AuditType
from vsm.control import audit, spending
from vsm.control.resources import amounts, as_resources, headroom
from vsm.control.system3 import System3


def audit_report(
    s3: System3,
    vsm_id: str,
    agents: list[AgentAudit],
    *,
    trigger: Literal["requested", "scheduled"],
    audit_type: AuditType,
    started_at: datetime,
    timeout_s: float,
) -> AuditFindings:
    """Judge the answers; the report is also S3's last audit of `vsm_id`."""
    account, latest = s3.ledger.account, s3.performance.get
    found = [
        judged
        for one in agents
        for judged in audit.judge(one, account(one.agent_id), latest(one.agent_id), timeout_s)
    ]
    report = AuditFindings(
        audit_id=str(uuid.uuid4()),
        trigger=trigger,
        audit_type=audit_type,
        started_at=started_at,
        agents=agents,
        findings=[finding for finding, _ in found],
        recommendations=[advice for _, advice in found],
    )
    s3.last_audit[vsm_id] = report
    return report


def headroom_of(s3: System3, vsm_id: str) -> ResourceHeadroom:
    system = s3.ledger.peek(vsm_id)
    return ResourceHeadroom(
        headroom=headroom(amounts(system.budget), system.free()),
        budget=system.budget,
        allocated=as_resources(system.allocated()),
    )


def llm_spend(s3: System3, vsm_id: str) -> LlmSpend:
    """The system's LLM spend today against its own cap."""
    system, spend = s3.ledger.peek(vsm_id), s3.today()
    cap = spending.own_cap(system)
    spent = spending.system_spent(spend, system, vsm_id)
    return LlmSpend(
        day=spend.day.isoformat(),
        cap_usd=cap,
        spent_usd=round(spent, 9),
        headroom_usd=None if cap is None else round(max(0.0, cap - spent), 9),
        shared_usd=round(spending.shared(system), 9),
    )


def state(s3: System3, vsm_id: str, now: datetime) -> System3State:
    system = s3.ledger.peek(vsm_id)
    damped = s3.damper.active(now)
    spent = s3.today().agents
    return System3State(
        vsm_id=vsm_id,
        budget=system.budget,
        allocated=as_resources(system.allocated()),
        free=as_resources(system.free()),
        headroom=headroom(amounts(system.budget), system.free()),
        allocations=[
            AgentAllocation(
                agent_id=a.agent_id,
                agent_type=a.agent_type,
                resources=a.resources.model_copy(update={"llm_usd_per_day": a.usd_share}),
                priority=a.priority,
                max_rate_per_s=a.max_rate_per_s,
                reason=a.reason,
                llm_spent_today_usd=round(spent.get(a.agent_id, 0.0), 9),
            )
            for a in sorted(system.accounts.values(), key=lambda a: a.agent_id)
        ],
        children=dict(system.children),
        damped={agent: until for agent, until in damped.items() if agent in system.accounts},
        last_audit=s3.last_audit.get(vsm_id),
        llm=llm_spend(s3, vsm_id),
    )
