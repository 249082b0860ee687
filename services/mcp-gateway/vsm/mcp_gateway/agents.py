"""REST for System 1: spawn, list, get and terminate agents, command them, audit them (S3*).

Registry routes are requests to `operations`; a command is published on `vsm.s1.commands`
(key `<agent_type>.<agent_id>.<command>`) and the route waits for the agent's result; an
audit goes straight to the agent's queue, bypassing S2. Bodies over 1 MiB get 413.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.message import Message
from vsm.contract.operations import (
    COMMAND_PATTERN,
    MAX_PAYLOAD_BYTES,
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
    TerminateAgent,
    command_key,
    command_queue,
)
from vsm.kit.ask import NotRoutable, ask
from vsm.kit.bus import Bus
from vsm.mcp_gateway.api import BusDep, error_response

ReplyT = TypeVar("ReplyT", bound=Message)
COMMAND_TIMEOUT_S = 30.0


class SpawnInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=32)
    config: dict[str, Any] = Field(default_factory=dict)


class CommandInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern=COMMAND_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=COMMAND_TIMEOUT_S, gt=0, le=300)


class AuditInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128)
    audit_type: AuditType
    timeout_s: float = Field(default=5.0, gt=0, le=60)


def on_invalid(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """422 naming each bad field; a body that is not JSON at all stays a 400."""
    problems = error.extra if isinstance(error.extra, list) else []
    fields = [
        {"field": p.get("key"), "message": p.get("message")}
        for p in problems
        if isinstance(p, dict)
    ]
    return Response(
        {
            "error": "invalid_request" if fields else "bad_request",
            "message": error.detail,
            "fields": fields,
        },
        status_code=422 if fields else 400,
    )


def on_not_routable(_: Request[Any, Any, Any], error: NotRoutable) -> Response[Any]:
    return error_response(404, "agent_not_found", str(error))


async def ask_operations(bus: Bus, operation: str, body: Message, expected: type[ReplyT]) -> ReplyT:
    reply = await bus.request("operations", operation, body)
    if not isinstance(reply.data, expected):
        raise HTTPException(status_code=502, detail=f"unexpected reply {reply.type}")
    return reply.data


class AgentsController(Controller):
    path = "/api/vsm"
    tags = ["system 1", "agents"]
    request_max_body_size = MAX_PAYLOAD_BYTES
    exception_handlers = {ValidationException: on_invalid, NotRoutable: on_not_routable}

    @post("/agents", status_code=201)
    async def spawn(self, bus: BusDep, data: JSONBody[SpawnInput]) -> AgentInfo:
        """Spawn an agent of `type` with `config` (validated per type); 422 names the field."""
        request = SpawnAgent(agent_type=data.type, config=data.config)
        return (await ask_operations(bus, "spawn", request, AgentDescription)).agent

    @get("/agents")
    async def list_agents(
        self,
        bus: BusDep,
        agent_type: Annotated[
            str | None, QueryParameter(name="type", required=False, max_length=32)
        ] = None,
    ) -> list[AgentInfo]:
        """The running agents, optionally of one type."""
        request = ListAgents(agent_type=agent_type)
        return (await ask_operations(bus, "list", request, AgentList)).agents

    @get("/agent-types")
    async def agent_types(self, bus: BusDep) -> list[AgentTypeInfo]:
        """Every agent type with its capabilities and config schema."""
        return (await ask_operations(bus, "types", DescribeAgentTypes(), AgentTypes)).types

    @get("/agents/{agent_id:str}")
    async def get_agent(self, bus: BusDep, agent_id: FromPath[str]) -> AgentInfo:
        return (
            await ask_operations(bus, "get", GetAgent(agent_id=agent_id), AgentDescription)
        ).agent

    @delete("/agents/{agent_id:str}", status_code=200)
    async def terminate(self, bus: BusDep, agent_id: FromPath[str]) -> AgentInfo:
        """Terminate the agent: it takes no more commands and leaves the list."""
        request = TerminateAgent(agent_id=agent_id)
        return (await ask_operations(bus, "terminate", request, AgentDescription)).agent

    @post("/agents/{agent_id:str}/command", status_code=200)
    async def command(
        self, bus: BusDep, agent_id: FromPath[str], data: JSONBody[CommandInput]
    ) -> CommandResult:
        """Send a command on `vsm.s1.commands` and wait for its result (504 past the timeout)."""
        agent = (
            await ask_operations(bus, "get", GetAgent(agent_id=agent_id), AgentDescription)
        ).agent
        reply = await ask(
            bus,
            AgentCommand(command_type=data.type, data=data.data),
            exchange=topology.S1_COMMANDS,
            routing_key=command_key(agent.agent_type, agent.agent_id, data.type),
            timeout=data.timeout_s,
        )
        if not isinstance(reply.data, CommandResult):
            raise HTTPException(status_code=502, detail=f"unexpected reply {reply.type}")
        return reply.data

    @post("/audit/bypass", status_code=200)
    async def audit(self, bus: BusDep, data: JSONBody[AuditInput]) -> AuditReport:
        """S3*: audit an agent straight through its queue; 404 if it has none, 504 if silent."""
        reply = await ask(
            bus,
            AuditRequest(audit_type=data.audit_type),
            queue=command_queue(data.agent_id).name,
            timeout=data.timeout_s,
        )
        if not isinstance(reply.data, AuditReport):
            raise HTTPException(status_code=502, detail=f"unexpected reply {reply.type}")
        return reply.data
