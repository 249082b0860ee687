"""The vsm message contract: what every service agrees on, and nothing else.

Importing this package registers every message type, so that any service can tell an
unknown type from one it merely does not handle.
"""

from vsm.contract import (
    adaptation,
    agent_types,
    algedonic,
    approvals,
    control,
    coordination,
    health,
    intelligence,
    journal,
    llm,
    operations,
    performance,
    policy,
    recursion,
    system5,
    telegram,
)
from vsm.contract.envelope import Envelope, VsmId
from vsm.contract.errors import ErrorReply, Unprocessable
from vsm.contract.message import Message, message_types

__all__ = [
    "Envelope",
    "ErrorReply",
    "Message",
    "Unprocessable",
    "VsmId",
    "adaptation",
    "agent_types",
    "algedonic",
    "approvals",
    "control",
    "coordination",
    "health",
    "intelligence",
    "journal",
    "llm",
    "message_types",
    "operations",
    "performance",
    "policy",
    "recursion",
    "system5",
    "telegram",
]
