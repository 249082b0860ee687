"""The MCP tools of System 1: the agent registry, commands and S3* audits.

No `from __future__ import annotations`: the SDK reads these signatures for the schemas.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from vsm.contract import topology
from vsm.contract.operations import (
    COMMAND_PATTERN,
    AgentCommand,
    AgentDescription,
    AgentInfo,
    AgentList,
    AgentTypes,
    AuditReport,
    AuditRequest,
    AuditType,
    CommandResult,
    DescribeAgentTypes,
    ListAgents,
    SpawnAgent,
    TerminateAgent,
    audit_key,
)
from vsm.kit.bus import Bus, expect
from vsm.mcp_gateway.mcp.arguments import ADDITIVE, DESTRUCTIVE, READ_ONLY, AgentId
from vsm.mcp_gateway.mcp.results import answered, tool_result
from vsm.mcp_gateway.rest.agents import AgentDirectory, command_agent

TERMINATES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)
"""Ends an agent for good; ending it again changes nothing more."""


def register(server: MCPServer[Any], bus: Bus, max_chars: int, directory: AgentDirectory) -> None:
    @server.tool(annotations=ADDITIVE)
    @answered
    async def spawn_agent(
        agent_type: Annotated[str, Field(min_length=1, max_length=32)],
        config: Annotated[dict[str, Any], Field(default_factory=dict)],
    ) -> Annotated[CallToolResult, AgentInfo]:
        """Spawn an S1 agent of `agent_type` (worker, llm_worker, sensor, api) with `config`."""
        request = SpawnAgent(agent_type=agent_type, config=config)
        reply = await bus.query("operations", "spawn", request, AgentDescription)
        return tool_result(reply.agent, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def list_agents(
        agent_type: Annotated[str | None, Field(max_length=32)] = None,
        include_terminated: bool = False,
    ) -> Annotated[CallToolResult, AgentList]:
        """The S1 agents in the registry, optionally of one type."""
        request = ListAgents(agent_type=agent_type, include_terminated=include_terminated)
        reply = await bus.query("operations", "list", request, AgentList)
        return tool_result(reply, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def list_agent_types() -> Annotated[CallToolResult, AgentTypes]:
        """Every S1 agent type: its config schema and its commands, each with the JSON schema
        of its `data` (`agent_command`'s argument) and of its result."""
        reply = await bus.query("operations", "types", DescribeAgentTypes(), AgentTypes)
        return tool_result(reply, max_chars)

    @server.tool(annotations=DESTRUCTIVE)
    @answered
    async def agent_command(
        agent_id: AgentId,
        command_type: Annotated[str, Field(pattern=COMMAND_PATTERN)],
        data: Annotated[dict[str, Any], Field(default_factory=dict)],
        timeout_s: Annotated[float, Field(ge=0.1, le=300)] = 30.0,
    ) -> Annotated[CallToolResult, CommandResult]:
        """Send a command on `vsm.s1.commands` and wait for the agent's result; `data` follows
        the command's input schema (`list_agent_types`)."""
        command = AgentCommand(agent_id=agent_id, command_type=command_type, data=data)
        result = await command_agent(bus, directory, agent_id, command, timeout_s)
        return tool_result(result, max_chars)

    @server.tool(annotations=TERMINATES)
    @answered
    async def terminate_agent(
        agent_id: AgentId,
        reason: Annotated[str, Field(max_length=256)] = "requested over MCP",
    ) -> Annotated[CallToolResult, AgentInfo]:
        """Terminate an agent: it takes no more commands."""
        request = TerminateAgent(agent_id=agent_id, reason=reason)
        reply = await bus.query("operations", "terminate", request, AgentDescription)
        return tool_result(reply.agent, max_chars)

    @server.tool(annotations=READ_ONLY)
    @answered
    async def audit_agent(
        agent_id: AgentId,
        audit_type: AuditType,
        timeout_s: Annotated[float, Field(ge=0.1, le=60)] = 5.0,
    ) -> Annotated[CallToolResult, AuditReport]:
        """S3*: audit an agent straight through its queue, bypassing S2."""
        reply = await bus.ask(
            AuditRequest(audit_type=audit_type),
            exchange=topology.S1_COMMANDS,
            routing_key=audit_key(agent_id),
            timeout=timeout_s,
        )
        return tool_result(expect(reply, AuditReport), max_chars)
