"""REST for System 1: spawn, list, get and terminate agents, command them, audit them (S3*).

Registry routes are requests to `operations`; a command is published on `vsm.s1.commands`
(key `<agent_type>.<agent_id>.<command>`) and the route waits for the agent's result; an
audit goes straight to the agent (`audit.<id>.audit`), bypassing S2. Bodies over 1 MiB get 413.

`POST /api/vsm/agents:bulk` spawns many agents in one request (one `SpawnAgents` request to
operations, which checks and spawns each in order): at most `REST_BULK_SPAWN_MAX` items, the
body within `REST_MAX_BODY_BYTES`; each item answers on its own (201 and the agent, or the
status and error a single spawn would have answered), so a refused item leaves the others.
`POST /api/vsm/agents:bulk-terminate` is its counterpart (one `TerminateAgents` request, at
most `REST_BULK_TERMINATE_MAX` ids): each id answers as its `DELETE` would (200 and the
agent, or 404 `agent_not_found`). A custom method, not `DELETE /agents` with a body: a body
on DELETE has no defined meaning in HTTP and some clients and proxies drop it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.message import Message
from vsm.contract.operations import (
    AGENT_NAME_PATTERN,
    BULK_SPAWN_LIMIT,
    BULK_TERMINATE_LIMIT,
    COMMAND_PATTERN,
    AgentCommand,
    AgentDescription,
    AgentInfo,
    AgentList,
    AgentTypeInfo,
    AgentTypes,
    AuditReport,
    AuditRequest,
    AuditType,
    CommandResult,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
    SpawnAgent,
    SpawnAgents,
    SpawnOutcomes,
    SpawnRefusal,
    TerminateAgent,
    TerminateAgents,
    TerminateOutcomes,
    audit_key,
    command_key,
)
from vsm.kit.bus import Bus, NotRoutable, expect
from vsm.kit.rpc import RequestTimeout
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    CONFLICT,
    EDGE,
    MUTATION,
    NOT_FOUND,
    PARAMS,
    BusDep,
    RestOperation,
    VsmIdParam,
    error_response,
    status_of,
    system,
)

ReplyT = TypeVar("ReplyT", bound=Message)
COMMAND_TIMEOUT_S = 30.0


class SpawnInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=32)
    config: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, pattern=AGENT_NAME_PATTERN)


class BulkSpawnInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[SpawnInput] = Field(
        max_length=BULK_SPAWN_LIMIT,
        description="The agents to spawn, in order (at most `REST_BULK_SPAWN_MAX`).",
    )


class BulkItem(BaseModel):
    """One item of a bulk request: its status and the agent, or the status, `error` code,
    `message` and `details` the single request would have answered."""

    index: int = Field(ge=0, description="The item's position in the request.")
    status: int
    agent: AgentInfo | None = None
    error: str | None = None
    message: str | None = None
    details: dict[str, Any] | None = None


class BulkSpawnItem(BulkItem):
    """One item of a bulk spawn: 201 and the agent, or the status, `error` code, `message`
    and `details` a single spawn of it would have answered (409 `quota_exceeded`, ...)."""


class BulkSpawnOutput(BaseModel):
    spawned: int = Field(ge=0, description="How many items were spawned.")
    refused: int = Field(ge=0, description="How many items were refused.")
    results: list[BulkSpawnItem] = Field(description="One per item, in the request's order.")


def refused_item(error: SpawnRefusal) -> dict[str, Any]:
    """The fields of a refused item of a bulk request: as a single request would answer."""
    return {
        "status": status_of(error.code),
        "error": error.code,
        "message": error.message,
        "details": error.details,
    }


def bulk_output(reply: SpawnOutcomes) -> BulkSpawnOutput:
    results = [
        BulkSpawnItem(index=o.index, status=201, agent=o.agent)
        if o.error is None
        else BulkSpawnItem(index=o.index, **refused_item(o.error))
        for o in reply.outcomes
    ]
    spawned = sum(r.agent is not None for r in results)
    return BulkSpawnOutput(spawned=spawned, refused=len(results) - spawned, results=results)


AgentId = Annotated[str, Field(min_length=1, max_length=128)]


class BulkTerminateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_ids: list[AgentId] = Field(
        max_length=BULK_TERMINATE_LIMIT,
        description="The agents to terminate, by id, in order (at most `REST_BULK_TERMINATE_MAX`).",
    )
    reason: str = Field(
        default="requested", max_length=256, description="Why (logged with each termination)."
    )


class BulkTerminateItem(BulkItem):
    """One item of a bulk terminate: 200 and the agent (terminated), or the status, `error`
    code, `message` and `details` its `DELETE` would have answered (404 `agent_not_found`,
    also for an id named earlier in the request)."""

    agent_id: str = Field(description="The id the item named.")


class BulkTerminateOutput(BaseModel):
    terminated: int = Field(ge=0, description="How many items were terminated.")
    refused: int = Field(ge=0, description="How many items were refused.")
    results: list[BulkTerminateItem] = Field(description="One per item, in the request's order.")


def bulk_terminate_output(reply: TerminateOutcomes) -> BulkTerminateOutput:
    results = [
        BulkTerminateItem(index=o.index, agent_id=o.agent_id, status=200, agent=o.agent)
        if o.error is None
        else BulkTerminateItem(index=o.index, agent_id=o.agent_id, **refused_item(o.error))
        for o in reply.outcomes
    ]
    ended = sum(r.agent is not None for r in results)
    return BulkTerminateOutput(terminated=ended, refused=len(results) - ended, results=results)


class CommandInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: str = Field(pattern=COMMAND_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=COMMAND_TIMEOUT_S, ge=0.1, le=300)


class BypassAuditInput(BaseModel):
    """One agent audited straight through its queue (S3*'s bypass, not S3's `AuditInput`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    agent_id: str = Field(min_length=1, max_length=128)
    audit_type: AuditType
    timeout_s: float = Field(default=5.0, ge=0.1, le=60)


def on_not_routable(_: Request[Any, Any, Any], error: NotRoutable) -> Response[Any]:
    return error_response(404, "agent_not_found", str(error))


class NoHost(Exception):
    """A command timed out while no live agent host offered its agent's type."""


def on_no_host(_: Request[Any, Any, Any], error: NoHost) -> Response[Any]:
    return error_response(504, "no_host", str(error))


async def command_agent(
    bus: Bus,
    directory: AgentDirectory,
    agent_id: str,
    command: AgentCommand,
    timeout_s: float,
) -> CommandResult:
    """Send a command on `vsm.s1.commands` and wait for its result: `RequestTimeout` past
    `timeout_s`, or `NoHost` when no live agent host offers the agent's type."""
    agent_type = await directory.type_of(bus, agent_id)
    try:
        reply = await bus.ask(
            command,
            exchange=topology.S1_COMMANDS,
            routing_key=command_key(agent_type, agent_id, command.command_type),
            timeout=timeout_s,
        )
    except RequestTimeout:
        query = GetAgent(agent_id=agent_id)
        described = await bus.query("operations", "get", query, AgentDescription)
        if described.hosts == 0:
            raise NoHost(
                f"no live agent host offers {agent_type!r}: the command was not taken "
                f"within {timeout_s:g} s"
            ) from None
        raise
    return expect(reply, CommandResult)


class AgentDirectory:
    """Agent id -> agent type, learnt from the registry once per agent.

    A command's routing key names the agent's type, and a type never changes; a terminated
    agent's routes are unbound, so a command to it is unroutable (404) whatever is cached.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._types: OrderedDict[str, str] = OrderedDict()

    async def type_of(self, bus: Bus, agent_id: str) -> str:
        known = self._types.get(agent_id)
        if known is None:
            query = GetAgent(agent_id=agent_id)
            known = (await bus.query("operations", "get", query, AgentDescription)).agent.agent_type
            self._types[agent_id] = known
            if len(self._types) > self.limit:
                self._types.popitem(last=False)
        return known


@dataclass(frozen=True)
class Agents:
    """What the command route needs, given as one dependency: the bus and the directory."""

    bus: Bus
    directory: AgentDirectory
    bulk_max: int = 1000
    """Most items of one bulk spawn (`REST_BULK_SPAWN_MAX`)."""
    bulk_timeout_s: float = 120.0
    """How long a bulk spawn or terminate waits for operations (`REST_BULK_SPAWN_TIMEOUT_S`)."""
    bulk_terminate_max: int = 1000
    """Most ids of one bulk terminate (`REST_BULK_TERMINATE_MAX`)."""


def dependencies(
    bus: Bus, bulk_max: int = 1000, bulk_timeout_s: float = 120.0, bulk_terminate_max: int = 1000
) -> dict[str, Provide]:
    agents = Agents(bus, AgentDirectory(), bulk_max, bulk_timeout_s, bulk_terminate_max)

    async def provide_agents() -> Agents:
        return agents

    return {"agents": Provide(provide_agents, use_cache=True)}


class AgentsController(Controller):
    path = "/api/vsm"
    tags = ["system 1", "agents"]
    exception_handlers = {NotRoutable: on_not_routable, NoHost: on_no_host}

    @post("/agents", status_code=201, responses=BODY | CONFLICT | ASKS)
    async def spawn(
        self, bus: BusDep, data: JSONBody[SpawnInput], vsm_id: VsmIdParam = None
    ) -> AgentInfo:
        """Spawn an agent of `type` with `config` (validated per type); 422 names the field.

        `name` (optional) is unique among the running agents of the viable system `vsm_id`.
        """
        request = SpawnAgent(agent_type=data.type, config=data.config, name=data.name)
        reply = await bus.query(
            "operations", "spawn", request, AgentDescription, vsm_id=system(vsm_id)
        )
        return reply.agent

    @post("/agents:bulk", status_code=200, responses=BODY | ASKS)
    async def spawn_many(
        self,
        agents: NamedDependency[Agents],
        data: JSONBody[BulkSpawnInput],
        vsm_id: VsmIdParam = None,
    ) -> BulkSpawnOutput:
        """Spawn many agents of the viable system `vsm_id` in one request (bulk).

        1 to `REST_BULK_SPAWN_MAX` items (1,000 by default; else 422 naming `agents`),
        the body within `REST_MAX_BODY_BYTES` (413). A malformed item is 422 for the whole
        request (nothing spawned). Otherwise 200 with one result per item, in order: each
        item is checked as one spawn is, counting the items before it against the quota
        (`AGENTS_PER_SYSTEM`) and the names, and a refused item leaves the others spawned.
        """
        if not 1 <= len(data.agents) <= agents.bulk_max:
            message = f"1 to {agents.bulk_max} agents per request (REST_BULK_SPAWN_MAX)"
            raise ValidationException(message, extra=[{"key": "agents", "message": message}])
        items = [SpawnAgent(agent_type=a.type, config=a.config, name=a.name) for a in data.agents]
        request = SpawnAgents(agents=items)
        reply = await agents.bus.query(
            "operations",
            "spawn-many",
            request,
            SpawnOutcomes,
            vsm_id=system(vsm_id),
            timeout=agents.bulk_timeout_s,
        )
        return bulk_output(reply)

    @post("/agents:bulk-terminate", status_code=200, responses=BODY | ASKS)
    async def terminate_many(
        self, agents: NamedDependency[Agents], data: JSONBody[BulkTerminateInput]
    ) -> BulkTerminateOutput:
        """Terminate many agents in one request (bulk), each as its `DELETE` would.

        1 to `REST_BULK_TERMINATE_MAX` ids (1,000 by default; else 422 naming `agent_ids`),
        the body within `REST_MAX_BODY_BYTES` (413). Otherwise 200 with one result per id,
        in order: 200 and the agent (terminated: its routes unbound, its results exchange
        deleted), or 404 `agent_not_found` for an id that names no running agent (or one
        named earlier in the request), which leaves the others terminated.
        """
        if not 1 <= len(data.agent_ids) <= agents.bulk_terminate_max:
            message = f"1 to {agents.bulk_terminate_max} agent ids per request"
            message += " (REST_BULK_TERMINATE_MAX)"
            raise ValidationException(message, extra=[{"key": "agent_ids", "message": message}])
        request = TerminateAgents(agent_ids=data.agent_ids, reason=data.reason)
        reply = await agents.bus.query(
            "operations",
            "terminate-many",
            request,
            TerminateOutcomes,
            timeout=agents.bulk_timeout_s,
        )
        return bulk_terminate_output(reply)

    @get("/agents", responses=EDGE | PARAMS | ASKS, operation_class=RestOperation)
    async def list_agents(
        self,
        bus: BusDep,
        agent_type: Annotated[
            str | None, QueryParameter(name="type", required=False, max_length=32)
        ] = None,
    ) -> list[AgentInfo]:
        """The running agents, optionally of one type."""
        request = ListAgents(agent_type=agent_type)
        return (await bus.query("operations", "list", request, AgentList)).agents

    @get("/agent-types", responses=EDGE | ASKS)
    async def agent_types(self, bus: BusDep) -> list[AgentTypeInfo]:
        """Every agent type with its capabilities and config schema."""
        return (await bus.query("operations", "types", DescribeAgentTypes(), AgentTypes)).types

    @get("/agents/{agent_id:str}", responses=EDGE | NOT_FOUND | ASKS, operation_class=RestOperation)
    async def get_agent(self, bus: BusDep, agent_id: FromPath[str]) -> AgentInfo:
        return (
            await bus.query("operations", "get", GetAgent(agent_id=agent_id), AgentDescription)
        ).agent

    @delete(
        "/agents/{agent_id:str}",
        status_code=200,
        responses=MUTATION | NOT_FOUND | ASKS,
        operation_class=RestOperation,
    )
    async def terminate(self, bus: BusDep, agent_id: FromPath[str]) -> AgentInfo:
        """Terminate the agent: it takes no more commands and leaves the list."""
        request = TerminateAgent(agent_id=agent_id)
        return (await bus.query("operations", "terminate", request, AgentDescription)).agent

    @post("/agents/{agent_id:str}/command", status_code=200, responses=BODY | NOT_FOUND | ASKS)
    async def command(
        self,
        agents: NamedDependency[Agents],
        agent_id: FromPath[str],
        data: JSONBody[CommandInput],
    ) -> Response[CommandResult]:
        """Send a command on `vsm.s1.commands` and wait for its result (504 past the timeout:
        `no_host` when no live agent host offers the agent's type, else `timeout`)."""
        command = AgentCommand(agent_id=agent_id, command_type=data.type, data=data.data)
        result = await command_agent(
            agents.bus, agents.directory, agent_id, command, data.timeout_s
        )
        # Serialised by pydantic itself: the same JSON as Litestar's encoder, at a fifth of
        # its cost, on the route that carries an agent's traffic (documented as the result).
        encoded: Response[Any] = Response(result.model_dump_json(), media_type=MediaType.JSON)
        return encoded

    @post("/audit/bypass", status_code=200, responses=BODY | NOT_FOUND | ASKS)
    async def audit(self, bus: BusDep, data: JSONBody[BypassAuditInput]) -> AuditReport:
        """S3*: audit an agent straight through its queue; 404 if it has none, 504 if silent."""
        reply = await bus.ask(
            AuditRequest(audit_type=data.audit_type),
            exchange=topology.S1_COMMANDS,
            routing_key=audit_key(data.agent_id),
            timeout=data.timeout_s,
        )
        return expect(reply, AuditReport)
