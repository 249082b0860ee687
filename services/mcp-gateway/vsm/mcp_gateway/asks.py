"""What the gateway asks of the other services and publishes on their behalf, for its AsyncAPI
document: its REST routes, MCP tools and console pages turn into these requests."""

from __future__ import annotations

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import ApprovalList, ApprovalQuery, ApprovalReply, DecideApproval
from vsm.contract.control import (
    ALLOCATION_REQUEST_KEY,
    AllocationGrant,
    AllocationRequest,
    AuditCommission,
    AuditFindings,
    SetBudget,
    System3Query,
    System3State,
)
from vsm.contract.coordination import (
    CoordinateMessage,
    CoordinationReceipt,
    System2Query,
    System2State,
    WorkItem,
    work_key,
)
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.intelligence import (
    MetaSystemNeed,
    MetaSystemNeedQuery,
    ScanRequest,
    ScanResult,
    System4Rules,
    System4Status,
    System4StatusQuery,
)
from vsm.contract.operations import (
    AgentCommand,
    AgentDescription,
    AgentList,
    AgentTypes,
    AuditReport,
    AuditRequest,
    CommandResult,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
    SpawnAgent,
    SpawnAgents,
    SpawnOutcomes,
    TerminateAgent,
    TerminateAgents,
    TerminateOutcomes,
    audit_key,
    command_key,
)
from vsm.contract.policy import (
    IdentityQuery,
    PolicyDiff,
    PolicyDiffQuery,
    PolicyList,
    PolicyListQuery,
    PolicyQuery,
    PolicyReply,
    StorePolicy,
)
from vsm.contract.recursion import (
    MetaSystemDescription,
    MetaSystemQuery,
    MetaSystemTree,
    RetireMetaSystem,
    SpawnMetaSystem,
)
from vsm.contract.system5 import (
    ACK_KEY,
    AlertAcknowledgement,
    Decision,
    DecisionRequest,
    SynthesisRequest,
    SynthesisResult,
    System5Query,
    System5State,
    Trace,
    TraceQuery,
)
from vsm.kit.interface import Interface
from vsm.mcp_gateway.rest.dead_letters import QUEUES as DEAD_LETTER_QUEUES

QUEEN = (
    (StatusQuery, SystemStatus),
    (System5Query, System5State),
    (DecisionRequest, Decision),
    (SynthesisRequest, SynthesisResult),
    (StorePolicy, PolicyReply),
    (PolicyQuery, PolicyReply),
    (PolicyListQuery, PolicyList),
    (PolicyDiffQuery, PolicyDiff),
    (IdentityQuery, PolicyReply),
    (SpawnMetaSystem, MetaSystemDescription),
    (RetireMetaSystem, MetaSystemDescription),
    (MetaSystemQuery, MetaSystemTree),
    (TraceQuery, Trace),
    (ApprovalQuery, ApprovalList),
    (DecideApproval, ApprovalReply),
)
ASKED = {
    "queen": QUEEN,
    "intelligence": (
        (System4StatusQuery, System4Status),
        (ScanRequest, ScanResult),
        (MetaSystemNeedQuery, MetaSystemNeed),
        (System4Rules, System4Status),
    ),
    "control": (
        (System3Query, System3State),
        (SetBudget, System3State),
        (AuditCommission, AuditFindings),
    ),
    "coordinator": ((System2Query, System2State), (CoordinateMessage, CoordinationReceipt)),
    "operations": (
        (SpawnAgent, AgentDescription),
        (SpawnAgents, SpawnOutcomes),
        (ListAgents, AgentList),
        (GetAgent, AgentDescription),
        (TerminateAgent, AgentDescription),
        (TerminateAgents, TerminateOutcomes),
        (DescribeAgentTypes, AgentTypes),
    ),
}


def declare(interface: Interface) -> None:
    for service, pairs in ASKED.items():
        for request, reply in pairs:
            interface.asks(service, request, reply)
    interface.sends(
        topology.S1_COMMANDS,
        AgentCommand,
        routing_key=command_key("{agent_type}", "{agent_id}", "{command}"),
        replies=(CommandResult,),
    )
    interface.sends(
        topology.S1_COMMANDS,
        AuditRequest,
        routing_key=audit_key("{agent_id}"),
        replies=(AuditReport,),
    )
    interface.sends(
        topology.CONTROL,
        AllocationRequest,
        routing_key=ALLOCATION_REQUEST_KEY,
        replies=(AllocationGrant,),
    )
    interface.sends(topology.COORDINATION, WorkItem, routing_key=work_key("{lane}"))
    interface.sends(topology.OPERATORS, AlertAcknowledgement, routing_key=ACK_KEY)
    interface.sends(topology.ALGEDONIC, AlgedonicSignal)
    interface.sends(topology.INTELLIGENCE, AdaptationRequest, routing_key="adaptation.request")
    for queue in DEAD_LETTER_QUEUES:
        interface.receives(
            topology.Queue(queue),
            description="Dead letters (any type), read, requeued to where they were going "
            "and discarded by operators (REST `/api/vsm/dead-letters`, `vsm dlq`).",
        )
