"""S1 operations: the agent registry, commands and results, S3* audits, and their topology.

Agents are spawned and terminated through requests to `operations` (`vsm.requests`,
`operations.<operation>`). Every registry change is an event on `vsm.s1.registry`; the
`operations` replicas rebuild their registry by replaying the stream `vsm.operations.registry`.
Commands reach an agent on `vsm.s1.commands` (key `<agent_type>.<agent_id>.<command>`) through
its partition `vsm.s1.partition.<k>` (one of a fixed number, `S1_PARTITIONS`; an agent is no
queue of its own, only one binding `*.<agent_id>.*`, which its audits, allocations and notes
share); results leave on `vsm.s1.<agent_id>.results`.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsm.contract.envelope import VsmId
from vsm.contract.journal import LogSnapshot
from vsm.contract.message import Message
from vsm.contract.topology import (
    CONTROL,
    COORDINATION,
    LOG_RETENTION,
    S1_COMMANDS,
    S1_REGISTRY,
    Binding,
    Exchange,
    Queue,
)

__all__ = [
    "AGENT_DEAD_LETTERS",
    "AGENT_ID_PATTERN",
    "AGENT_NAME_PATTERN",
    "BULK_SPAWN_LIMIT",
    "BULK_TERMINATE_LIMIT",
    "COMMAND_PATTERN",
    "MAX_BULK_PAYLOAD_BYTES",
    "MAX_PAYLOAD_BYTES",
    "REGISTRY_BATCH_LIMIT",
    "REGISTRY_EVENTS",
    "REGISTRY_LOG",
    "AgentCommand",
    "AgentCrashed",
    "AgentDescription",
    "AgentInfo",
    "AgentList",
    "AgentRehomed",
    "AgentSpawned",
    "AgentState",
    "AgentTerminated",
    "AgentTypeInfo",
    "AgentTypes",
    "AgentsSpawned",
    "AgentsTerminated",
    "AuditReport",
    "AuditRequest",
    "AuditType",
    "CommandError",
    "CommandInfo",
    "CommandResult",
    "DescribeAgentTypes",
    "GetAgent",
    "ListAgents",
    "RegistryEvent",
    "RegistryMark",
    "RegistrySnapshot",
    "RehomeAgents",
    "SpawnAgent",
    "SpawnAgents",
    "SpawnOutcome",
    "SpawnOutcomes",
    "SpawnRefusal",
    "TerminateAgent",
    "TerminateAgents",
    "TerminateOutcome",
    "TerminateOutcomes",
    "agent_routes",
    "audit_key",
    "command_key",
    "earlier_command_queue",
    "earlier_routes",
    "event_agent_ids",
    "partition_of",
    "partition_queue",
    "pool_queue",
    "registry_key",
    "results_exchange",
    "serving_queue",
]

AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
"""Agent ids travel inside routing keys and queue names: no dots, no wildcards."""

AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
COMMAND_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest command or spawn message accepted (REST answers 413, AMQP dead-letters)."""

BULK_SPAWN_LIMIT = 10_000
"""Most agents one `SpawnAgents` asks for (the gateway's `REST_BULK_SPAWN_MAX` is at most this)."""

BULK_TERMINATE_LIMIT = 10_000
"""Most agents one `TerminateAgents` names (the gateway's `REST_BULK_TERMINATE_MAX` is at most
this)."""

MAX_BULK_PAYLOAD_BYTES = 16 * 1024 * 1024
"""Largest `SpawnAgents` or `TerminateAgents` message accepted (AMQP dead-letters a larger
one)."""

REGISTRY_BATCH_LIMIT = 64
"""Most agents one batched registry event (`AgentsSpawned`, `AgentsTerminated`) names."""

AgentState = Literal["running", "terminated"]
AuditType = Literal["state_dump", "metrics_only", "resource_audit"]

# Topology ---------------------------------------------------------------------------------
REGISTRY_LOG = Queue(
    "vsm.operations.registry",
    (Binding(S1_REGISTRY, "agent.#"),),
    "The registry's event log (a stream), with a snapshot of the running agents every so "
    "many entries; every operations replica reads it from the last snapshot on at start-up "
    "and follows it.",
    kind="stream",
    arguments=LOG_RETENTION,
    snapshots=True,
)


def registry_key(
    event: Literal["spawned", "terminated", "crashed", "rehomed"], agent_type: str
) -> str:
    return f"agent.{event}.{agent_type}"


def command_key(agent_type: str, agent_id: str, command: str) -> str:
    """Routing key on `vsm.s1.commands` for `command` to one agent."""
    return f"{agent_type}.{agent_id}.{command}"


AGENT_DEAD_LETTERS = "vsm.s1.commands.dlq"
"""The one dead-letter queue of every agent's command queue, bound once by its own name: a
quorum queue is the costliest thing a spawn declares, so an agent gets one, not two (and no
binding of its own). A dead letter's headers name the queue it came from."""


PARTITION_PREFIX = "vsm.s1.partition."


def partition_of(agent_id: str, partitions: int) -> int:
    """The partition an agent is assigned at spawn (recorded in the registry): a stable rule,
    crc32 of its id modulo the number of partitions."""
    return zlib.crc32(agent_id.encode()) % partitions


def partition_queue(partition: int) -> Queue:
    """One of the `S1_PARTITIONS` durable queues through which the agents' commands reach
    the operations replicas: single active consumer, so a partition (and every agent in it)
    is served by one replica at a time, and another takes it over when that one dies.

    It has no bindings of its own: each agent binds its one route to its partition
    (`agent_routes`, one binding) while it runs.
    """
    return Queue(
        f"{PARTITION_PREFIX}{partition}",
        (),
        f"Commands, S3* audits, allocation changes and S2 notes for the agents of partition "
        f"{partition}.",
        arguments={"x-single-active-consumer": True},
        shared_dead_letters=AGENT_DEAD_LETTERS,
    )


POOL_PREFIX = "vsm.s1.pool."
TYPE_PARTITIONS = 4
"""Partitions of an agent type offered by agent hosts (`S1_TYPE_PARTITIONS`): the most hosts
that share the agents of one type."""


def pool_queue(agent_type: str, partition: int) -> Queue:
    """One of the `S1_TYPE_PARTITIONS` durable queues of an agent type that agent hosts offer
    (`vsm.s1.pool.<type>.<k>`): every host offering the type consumes all of them, single
    active consumer, so each partition (and every agent in it) is served by one host at a
    time, and another host offering the type takes it over when that one dies."""
    return Queue(
        f"{POOL_PREFIX}{agent_type}.{partition}",
        (),
        f"Commands, S3* audits, allocation changes and S2 notes for the {agent_type} agents of "
        f"partition {partition}, served by the agent hosts offering {agent_type}.",
        arguments={"x-single-active-consumer": True},
        shared_dead_letters=AGENT_DEAD_LETTERS,
    )


def serving_queue(pool: str | None, partition: int) -> Queue:
    """The queue that serves an agent: its type's pool on the hosts offering it, or (None)
    operations' own partitions."""
    return partition_queue(partition) if pool is None else pool_queue(pool, partition)


def agent_routes(agent_id: str, partition: int, pool: str | None = None) -> Queue:
    """An agent's one binding into its partition (no queue): `*.<agent_id>.*` on
    `vsm.s1.commands`. It carries its commands, its S3* audits (`audit_key`), and, through the
    fixed joins of `vsm.control` and `vsm.coordination` into `vsm.s1.commands`
    (`topology.JOINS`), its allocation changes from S3 (`allocation.<agent_id>.changed`) and
    its notes from other S1 units through S2 (`s1.<agent_id>.note`)."""
    queue = serving_queue(pool, partition)
    return Queue(
        queue.name,
        (Binding(S1_COMMANDS, f"*.{agent_id}.*"),),
        queue.description,
        arguments=queue.arguments,
        shared_dead_letters=AGENT_DEAD_LETTERS,
    )


def earlier_routes(agent_id: str, partition: int, pool: str | None = None) -> Queue:
    """The two bindings into its partition that versions before one binding per agent gave an
    agent besides `agent_routes` (`allocation.<agent_id>` on `vsm.control`, `s1.<agent_id>`
    on `vsm.coordination`): an agent spawned then still has them (its record has no
    `one_route`), so terminating it unbinds them too (unbinding what is not there is no
    error, but costs the broker as much as unbinding what is)."""
    queue = serving_queue(pool, partition)
    return Queue(
        queue.name,
        (Binding(CONTROL, f"allocation.{agent_id}"), Binding(COORDINATION, f"s1.{agent_id}")),
        queue.description,
        arguments=queue.arguments,
        shared_dead_letters=AGENT_DEAD_LETTERS,
    )


def audit_key(agent_id: str) -> str:
    """Routing key on `vsm.s1.commands` of an S3* audit of one agent (`AuditRequest`, answered
    to its `reply_to` with its correlation id): it reaches the agent by its route, bypassing
    S2; unroutable (returned) when no agent of that id runs."""
    return f"audit.{agent_id}.audit"


def earlier_command_queue(agent_id: str) -> Queue:
    """The agent's own command queue as versions before partitions declared it, with the
    bindings they gave it (allocations and notes had two-word keys then): operations unbinds
    it, so that what is sent to the agent now reaches its partition, and deletes it once
    empty (`vsm.s1.<id>.command`)."""
    return Queue(
        f"vsm.s1.{agent_id}.command",
        (
            Binding(S1_COMMANDS, f"*.{agent_id}.*"),
            Binding(CONTROL, f"allocation.{agent_id}"),
            Binding(COORDINATION, f"s1.{agent_id}"),
        ),
        f"Commands for agent {agent_id} (before partitions).",
        arguments={"x-single-active-consumer": True},
        shared_dead_letters=AGENT_DEAD_LETTERS,
    )


def results_exchange(agent_id: str) -> Exchange:
    """The agent's results exchange, bound exchange-to-exchange into `vsm.s1.results` (`#`)."""
    return Exchange(f"vsm.s1.{agent_id}.results", "topic", f"Results of agent {agent_id}.")


# Registry ---------------------------------------------------------------------------------
class AgentInfo(BaseModel):
    """One agent as the registry knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    agent_type: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, pattern=AGENT_NAME_PATTERN)
    vsm_id: VsmId = "root"
    config: dict[str, Any] = Field(default_factory=dict)
    capabilities: list[str] = Field(default_factory=list)
    allocation: int = Field(ge=1, description="Commands handled concurrently now.")
    max_allocation: int = Field(ge=1, description="Concurrency with full resources.")
    state: AgentState = "running"
    spawned_at: datetime
    terminated_at: datetime | None = None
    crashes: int = Field(default=0, ge=0)
    partition: int | None = Field(
        default=None,
        ge=0,
        description="The partition whose queue carries its commands (`partition_of` at spawn); "
        "none for an agent spawned before partitions.",
    )
    pool: str | None = Field(
        default=None,
        max_length=32,
        description="The agent type whose agent hosts serve it, through the type's own "
        "partitions (`vsm.s1.pool.<type>.<k>`); none for a type operations runs itself.",
    )
    one_route: bool = Field(
        default=False,
        description="Spawned with its one binding into its partition (`agent_routes`); false: "
        "by an earlier release, which also bound `allocation.<id>` and `s1.<id>` keys "
        "(`earlier_routes`), those going at terminate.",
    )


class SpawnAgent(Message):
    """Ask operations for a new agent; the config is validated against the type's schema."""

    TYPE: ClassVar[str] = "vsm.s1.agent.spawn.v1"

    agent_type: str = Field(min_length=1, max_length=32)
    config: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(
        default=None,
        pattern=AGENT_NAME_PATTERN,
        description="A stable name chosen by whoever declares the agent (organisation files).",
    )


class SpawnAgents(Message):
    """Ask operations for many agents in one request (bulk spawn).

        Each item is checked and spawned on its own, in order: the quota (`AGENTS_PER_SYSTEM`)
        and name uniqueness count the items accepted before it, and a refused item leaves the
        others alone. The agents spawned are logged together, one `AgentsSpawned` per at most
    `VSM_REGISTRY_BATCH` agents of one type and viable system (an `AgentSpawned` each when the
    setting is 1).
    """

    TYPE: ClassVar[str] = "vsm.s1.agent.spawn-many.v1"

    agents: list[SpawnAgent] = Field(min_length=1, max_length=BULK_SPAWN_LIMIT)


class SpawnRefusal(BaseModel):
    """Why one item of a bulk spawn (or bulk terminate) was refused: the codes a single spawn
    (or terminate) answers with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4096)
    details: dict[str, Any] = Field(default_factory=dict)


class SpawnOutcome(BaseModel):
    """One item of a bulk spawn: the agent spawned, or why it was not (exactly one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0, description="The item's position in the request.")
    agent: AgentInfo | None = None
    error: SpawnRefusal | None = None


class SpawnOutcomes(Message):
    """The reply to `SpawnAgents`: one outcome per item, in the request's order."""

    TYPE: ClassVar[str] = "vsm.s1.agent.spawn-many-reply.v1"

    outcomes: list[SpawnOutcome] = Field(max_length=BULK_SPAWN_LIMIT)


class ListAgents(Message):
    TYPE: ClassVar[str] = "vsm.s1.agent.list.v1"

    agent_type: str | None = Field(default=None, max_length=32)
    include_terminated: bool = False
    offset: int = Field(default=0, ge=0, description="Skip this many (in spawn order).")
    limit: int | None = Field(
        default=None, ge=1, le=1000, description="At most this many: a page (none: all)."
    )


class GetAgent(Message):
    TYPE: ClassVar[str] = "vsm.s1.agent.get.v1"

    agent_id: str = Field(min_length=1, max_length=128)


class TerminateAgent(Message):
    TYPE: ClassVar[str] = "vsm.s1.agent.terminate.v1"

    agent_id: str = Field(min_length=1, max_length=128)
    reason: str = Field(default="requested", max_length=256)


class TerminateAgents(Message):
    """Terminate many agents in one request (bulk terminate).

    Each id is terminated on its own, as one `TerminateAgent` is (unrouted and logged, then
    answered; its results exchange deleted in the background just after): an id that names
    no running agent, or repeats one named before it, is refused (`agent_not_found`) and
    leaves the others alone. The agents terminated are logged together, one
    `AgentsTerminated` per at most `VSM_REGISTRY_BATCH` agents of one type (an
    `AgentTerminated` each when the setting is 1).
    """

    TYPE: ClassVar[str] = "vsm.s1.agent.terminate-many.v1"

    agent_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=BULK_TERMINATE_LIMIT
    )
    reason: str = Field(default="requested", max_length=256)


class TerminateOutcome(BaseModel):
    """One item of a bulk terminate: the agent as it now stands (terminated), or why it was
    not terminated (exactly one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0, description="The item's position in the request.")
    agent_id: str = Field(max_length=128)
    agent: AgentInfo | None = None
    error: SpawnRefusal | None = None


class TerminateOutcomes(Message):
    """The reply to `TerminateAgents`: one outcome per id, in the request's order."""

    TYPE: ClassVar[str] = "vsm.s1.agent.terminate-many-reply.v1"

    outcomes: list[TerminateOutcome] = Field(max_length=BULK_TERMINATE_LIMIT)


class DescribeAgentTypes(Message):
    """Ask which agent types exist, with their capabilities and config schemas."""

    TYPE: ClassVar[str] = "vsm.s1.agent-types.query.v1"


class CommandInfo(BaseModel):
    """One command a type declares: what it does, the JSON schema of its `data` and, where
    the type declares one, of its result. The schemas are what forms and tools are built from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None


class AgentTypeInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_type: str
    description: str
    capabilities: dict[str, str] = Field(
        description="Command name -> description (the same names as `commands`, kept for "
        "readers of earlier releases)."
    )
    config_schema: dict[str, Any]
    commands: dict[str, CommandInfo] = Field(
        default_factory=dict,
        description="Each command with the schemas of its input and output (empty from a "
        "host of an earlier release).",
    )


class AgentTypes(Message):
    TYPE: ClassVar[str] = "vsm.s1.agent-types.v1"

    types: list[AgentTypeInfo]


class AgentDescription(Message):
    """The reply to spawn, get and terminate: the agent as it now stands."""

    TYPE: ClassVar[str] = "vsm.s1.agent.v1"

    agent: AgentInfo
    hosts: int | None = Field(
        default=None,
        ge=0,
        description="Live agent hosts offering its type, for an agent of a type hosts serve "
        "(none for operations' own types, and from earlier releases).",
    )


class AgentList(Message):
    TYPE: ClassVar[str] = "vsm.s1.agent.list-reply.v1"

    agents: list[AgentInfo]
    total: int | None = Field(
        default=None, ge=0, description="How many match, whatever the page (none: not told)."
    )


class AgentSpawned(Message):
    """Registry event: an agent exists from now on."""

    TYPE: ClassVar[str] = "vsm.s1.agent.spawned.v1"

    agent: AgentInfo


class AgentTerminated(Message):
    """Registry event: the agent takes no more commands."""

    TYPE: ClassVar[str] = "vsm.s1.agent.terminated.v1"

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    agent_type: str
    reason: str = Field(max_length=256)
    terminated_at: datetime


class AgentsSpawned(Message):
    """Registry event: these agents exist from now on (a bulk spawn's batch: 1 to
    `REGISTRY_BATCH_LIMIT` agents, all of one type and one viable system, so that the routing
    key `agent.spawned.<type>` and the envelope's viable system hold for each). It means what
    an `AgentSpawned` for each of them, in order, would."""

    TYPE: ClassVar[str] = "vsm.s1.agents.spawned.v1"

    agents: list[AgentInfo] = Field(min_length=1, max_length=REGISTRY_BATCH_LIMIT)

    @model_validator(mode="after")
    def _one_type_and_system(self) -> AgentsSpawned:
        kinds = {(a.agent_type, a.vsm_id) for a in self.agents}
        if len(kinds) > 1:
            raise ValueError(
                "a batch names agents of one agent_type and one vsm_id, not "
                + ", ".join(sorted(f"{t}@{v}" for t, v in kinds))
            )
        if len({a.agent_id for a in self.agents}) < len(self.agents):
            raise ValueError("a batch names each agent once")
        return self


class AgentsTerminated(Message):
    """Registry event: these agents, all of `agent_type`, take no more commands (a bulk
    terminate's batch: 1 to `REGISTRY_BATCH_LIMIT` ids). It means what an `AgentTerminated`
    for each of them, in order, would."""

    TYPE: ClassVar[str] = "vsm.s1.agents.terminated.v1"

    agent_ids: list[Annotated[str, Field(pattern=AGENT_ID_PATTERN)]] = Field(
        min_length=1, max_length=REGISTRY_BATCH_LIMIT
    )
    agent_type: str
    reason: str = Field(max_length=256)
    terminated_at: datetime

    @model_validator(mode="after")
    def _each_once(self) -> AgentsTerminated:
        if len(set(self.agent_ids)) < len(self.agent_ids):
            raise ValueError("a batch names each agent once")
        return self


class AgentRehomed(Message):
    """Registry event: the agent now belongs to another viable system (`agent.vsm_id`), its
    work, reports and allocation with it (a structural change moved it)."""

    TYPE: ClassVar[str] = "vsm.s1.agent.rehomed.v1"

    agent: AgentInfo
    from_vsm_id: VsmId
    reason: str = Field(max_length=256)


class RehomeAgents(Message):
    """Move the running agents of `agent_type` in the envelope's viable system to `to_vsm_id`
    (answered with the `AgentList` of the agents moved)."""

    TYPE: ClassVar[str] = "vsm.s1.agents.rehome.v1"

    agent_type: str = Field(min_length=1, max_length=32)
    to_vsm_id: VsmId
    reason: str = Field(default="", max_length=256)


class AgentCrashed(Message):
    """Registry event: something inside the agent failed unexpectedly (it keeps running)."""

    TYPE: ClassVar[str] = "vsm.s1.agent.crashed.v1"

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    agent_type: str
    error: str = Field(max_length=1024)
    crashed_at: datetime


class RegistrySnapshot(LogSnapshot):
    """The registry's live state written to its log every so many entries (and at start-up):
    a start-up reads the log from its last snapshot on (`vsm.kit.snapshots`), so replay is
    bounded by the live agents, not by the history. Terminated agents are left out."""

    TYPE: ClassVar[str] = "vsm.s1.registry.snapshot.v1"

    agents: list[AgentInfo] = Field(default_factory=list, description="The running agents.")
    ahead: list[str] = Field(
        default_factory=list,
        description="Ids of events the writer had applied beyond `covers` (its own, not yet "
        "read back): not applied twice.",
    )


class RegistryMark(Message):
    """Written by a replica to the registry log to learn when its replay has caught up."""

    TYPE: ClassVar[str] = "vsm.s1.registry.mark.v1"

    instance: str = Field(max_length=128)
    nonce: str = Field(max_length=64)
    live_keys: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="The ids of the keys that verified live traffic when this was written "
        "(none: unsigned, or an earlier release). An older key left out is retired from "
        "here on: a log entry it signs later is refused.",
    )


# Commands ---------------------------------------------------------------------------------
class AgentCommand(Message):
    """A command for one agent, which it names; `command_id` lets a redelivered duplicate be
    recognised."""

    TYPE: ClassVar[str] = "vsm.s1.command.v1"

    agent_id: str | None = Field(
        default=None,
        pattern=AGENT_ID_PATTERN,
        description="The agent the command is for: an agent refuses (`misaddressed`) a command "
        "that names another. Senders of earlier releases leave it out.",
    )
    command_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=128)
    command_type: str = Field(pattern=COMMAND_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)


class CommandError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4096)
    details: dict[str, Any] = Field(default_factory=dict)


class CommandResult(Message):
    """Every command gets exactly this, on the agent's results exchange and to `reply_to`."""

    TYPE: ClassVar[str] = "vsm.s1.result.v1"

    agent_id: str
    command_id: str
    command_type: str
    status: Literal["ok", "error"]
    result: dict[str, Any] | None = None
    error: CommandError | None = None
    processing_time_ms: float = Field(ge=0)
    agent_type: str | None = Field(
        default=None,
        max_length=32,
        description="The type of the agent that answered (none from earlier releases): the "
        "part of the work S4 names when its variety overloads a viable system.",
    )


# S3* audit --------------------------------------------------------------------------------
class AuditRequest(Message):
    """S3*: audit one agent directly (sent straight to its queue, bypassing S2)."""

    TYPE: ClassVar[str] = "vsm.s1.audit.request.v1"

    audit_type: AuditType


class AuditReport(Message):
    TYPE: ClassVar[str] = "vsm.s1.audit.report.v1"

    agent_id: str
    agent_type: str
    audit_type: AuditType
    report: dict[str, Any]


RegistryEvent = (
    AgentSpawned | AgentsSpawned | AgentTerminated | AgentsTerminated | AgentCrashed | AgentRehomed
)
"""What the registry log holds besides its marks and snapshots."""
REGISTRY_EVENTS: tuple[type[Message], ...] = (
    AgentSpawned,
    AgentsSpawned,
    AgentTerminated,
    AgentsTerminated,
    AgentCrashed,
    AgentRehomed,
)
"""The types of `RegistryEvent`, for declaring who sends or receives them."""


def event_agent_ids(event: Message) -> list[str]:
    """The ids of the agents a registry event is about (several for a batch)."""
    if isinstance(event, AgentsSpawned):
        return [a.agent_id for a in event.agents]
    if isinstance(event, AgentsTerminated):
        return list(event.agent_ids)
    if isinstance(event, AgentSpawned | AgentRehomed):
        return [event.agent.agent_id]
    if isinstance(event, AgentTerminated | AgentCrashed):
        return [event.agent_id]
    return []
