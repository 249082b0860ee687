"""vsm.agent: write an S1 agent type that a vsm agent host runs under the system's governance.

An agent type is a class: a name, a description (its docstring), a pydantic config model
(`Agent[MyConfig]`) and async methods declared `@command`, whose annotations give each
command's input and output models. `describe` turns the type into its manifest (every JSON
schema, ready for the wire); `spawn` and `RunningAgent.run` are the transport-free core a
host runs commands with; `discover` loads the types packages publish as entry points.
"""

from vsm.agent.context import (
    AgentIdentity,
    AgentLog,
    Allocation,
    Cancellation,
    CommandCancelled,
    Context,
    Feeling,
    Intent,
    Llm,
    Progress,
)
from vsm.agent.definition import (
    Agent,
    AgentDefinitionError,
    AgentTypeDefinition,
    CommandDefinition,
    JsonObject,
    NoConfig,
    command,
    definition,
    describe,
)
from vsm.agent.discovery import ENTRY_POINT_GROUP, Discovery, DiscoveryProblem, discover
from vsm.agent.registry import TypeClash, TypeRegistry, check_clash
from vsm.agent.runner import Invocation, Outcome, RunningAgent, spawn
from vsm.agent.version import VERSION
from vsm.contract.agent_types import AgentTypeManifest
from vsm.contract.errors import Refused

__all__ = [
    "ENTRY_POINT_GROUP",
    "VERSION",
    "Agent",
    "AgentDefinitionError",
    "AgentIdentity",
    "AgentLog",
    "AgentTypeDefinition",
    "AgentTypeManifest",
    "Allocation",
    "Cancellation",
    "CommandCancelled",
    "CommandDefinition",
    "Context",
    "Discovery",
    "DiscoveryProblem",
    "Feeling",
    "Intent",
    "Invocation",
    "JsonObject",
    "Llm",
    "NoConfig",
    "Outcome",
    "Progress",
    "Refused",
    "RunningAgent",
    "TypeClash",
    "TypeRegistry",
    "check_clash",
    "command",
    "definition",
    "describe",
    "discover",
    "spawn",
]
