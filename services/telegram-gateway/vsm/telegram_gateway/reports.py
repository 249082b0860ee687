"""How the system's answers read in a chat: plain text, one fact per line."""

from __future__ import annotations

import json

from vsm.contract.approvals import Approval
from vsm.contract.health import SystemStatus
from vsm.contract.operations import AgentInfo
from vsm.contract.policy import PolicyList, PolicyRecord
from vsm.contract.system5 import OperatorAlert, System5State


def percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value * 100:.0f}%"


def status_report(status: SystemStatus) -> str:
    lines = [
        f"System {status.vsm_id}: {status.state}",
        f"Viability {percent(status.viability)} (coverage {percent(status.viability_coverage)})",
    ]
    lines += [
        f"• {c.service} ({c.role}): {c.state}, {c.instances} instance(s)" for c in status.components
    ]
    return "\n".join(lines)


def viability_report(state: System5State) -> str:
    viability = state.viability
    lines = [
        f"Viability of {state.vsm_id}: {percent(viability.score)} "
        f"(coverage {percent(viability.coverage)})"
    ]
    for term in viability.terms:
        detail = f" — {term.detail}" if term.detail else ""
        lines.append(f"• {term.name} (weight {term.weight:g}): {percent(term.value)}{detail}")
    algedonic = state.algedonic
    lines.append(f"Pain {algedonic.pain:.2f}, pleasure {algedonic.pleasure:.2f}")
    open_ = [i for i in state.interventions if i.status in ("open", "escalated")]
    lines.append(f"Open interventions: {len(open_)}")
    return "\n".join(lines)


def agents_report(agents: list[AgentInfo]) -> str:
    if not agents:
        return "No S1 agents are running. Spawn one with /spawn <type>."
    lines = [f"{len(agents)} agent(s):"]
    lines += [
        f"• {a.agent_id} ({a.agent_type}), allocation {a.allocation}/{a.max_allocation}"
        for a in agents
    ]
    return "\n".join(lines)


def spawned_report(agent: AgentInfo) -> str:
    return f"Spawned {agent.agent_type} agent {agent.agent_id}."


def policies_report(policies: PolicyList) -> str:
    if not policies.policies:
        return "No policies yet."
    lines = ["Latest policies:"]
    lines += [f"• {p.policy_type} v{p.latest_version} ({p.source})" for p in policies.policies]
    lines.append("Show one with /policy <type>.")
    return "\n".join(lines)


def policy_report(record: PolicyRecord) -> str:
    document = record.policy.model_dump_json(indent=2)
    return f"{record.policy_type} v{record.version} by {record.source}\n{document}"


def alert_report(alert: OperatorAlert) -> str:
    return (
        f"⚠️ {alert.severity.upper()}: {alert.title}\n{alert.text}\n"
        f"Pain {alert.pain_level:.2f}, escalation level {alert.escalation_level}\n"
        f"Alert {alert.alert_id}"
    )


def approval_report(approval: Approval) -> str:
    return (
        f"🗳 Approval needed in {approval.vsm_id}: {approval.policy_type} by {approval.source}\n"
        f"Why: {approval.why}\n"
        f"{approval.reason or '(no reason given)'}\n"
        f"Policy: {json.dumps(approval.policy, sort_keys=True)[:1500]}\n"
        f"Expires {approval.expires_at:%H:%M:%S} UTC (then rejected: the old policy stays)\n"
        f"Approval {approval.approval_id}"
    )
