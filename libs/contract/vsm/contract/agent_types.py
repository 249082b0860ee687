"""What an agent type is on the wire: the manifest a host announces for each type it offers.

A manifest is plain data made from an SDK type (`vsm.agent.describe`): its name, version,
description, the JSON schema of its config and each command with the schemas of its input
and output. The same schemas become the capability listing (`GET /api/vsm/agent-types`),
the organisation file's schema and MCP tool arguments. Two manifests of one name are the
same type only when their schemas agree (`same_schemas`); the version is for people.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vsm.contract.message import Message
from vsm.contract.operations import COMMAND_PATTERN, AgentTypeInfo, CommandInfo

__all__ = [
    "AGENT_TYPE_PATTERN",
    "HOST_SERVICE",
    "MAX_OFFERS",
    "AgentTypeManifest",
    "HostRegistered",
    "RegisterHost",
    "same_schemas",
]

HOST_SERVICE = "agent-host"
"""The service name agent hosts heartbeat under on `vsm.health` (details: `offers`, the
manifests of the types offered, and `partitions_ready`)."""
MAX_OFFERS = 64
"""Agent types one host offers at most."""

AGENT_TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
"""A type's name travels inside routing keys (`<agent_type>.<agent_id>.<command>`): no dots,
no wildcards, at most 32 characters like `AgentInfo.agent_type`."""


class AgentTypeManifest(BaseModel):
    """One agent type as a host offers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=AGENT_TYPE_PATTERN)
    version: str = Field(min_length=1, max_length=64)
    description: str = Field(max_length=4096)
    config_schema: dict[str, Any]
    commands: dict[str, CommandInfo] = Field(
        description="Command name (`^[a-z][a-z0-9_]{0,63}$`) -> its description and schemas."
    )

    @field_validator("commands")
    @classmethod
    def _command_names(cls, commands: dict[str, CommandInfo]) -> dict[str, CommandInfo]:
        bad = sorted(name for name in commands if not re.fullmatch(COMMAND_PATTERN, name))
        if bad:
            raise ValueError(f"command names must match {COMMAND_PATTERN}: {bad}")
        return commands

    def info(self) -> AgentTypeInfo:
        """The type as the capability listing (`AgentTypes`) shows it."""
        return AgentTypeInfo(
            agent_type=self.name,
            description=self.description,
            capabilities={name: c.description for name, c in self.commands.items()},
            config_schema=self.config_schema,
            commands=dict(self.commands),
        )


def same_schemas(one: AgentTypeManifest, other: AgentTypeManifest) -> bool:
    """Whether two manifests accept the same configs and commands and answer the same shapes
    (descriptions and versions aside): only then may both serve agents of one type."""
    return one.config_schema == other.config_schema and {
        name: (c.input_schema, c.output_schema) for name, c in one.commands.items()
    } == {name: (c.input_schema, c.output_schema) for name, c in other.commands.items()}


class RegisterHost(Message):
    """An agent host's offer, sent to operations before it consumes anything: the types it
    offers. Refused with `agent_type_clash` (naming both sources) when a type's schemas
    differ from a built-in type's or another host's."""

    TYPE: ClassVar[str] = "vsm.s1.host.register.v1"

    instance: str = Field(min_length=1, max_length=128)
    offers: list[AgentTypeManifest] = Field(min_length=1, max_length=MAX_OFFERS)


class HostRegistered(Message):
    """The reply to `RegisterHost`: the types now known to be offered by the host."""

    TYPE: ClassVar[str] = "vsm.s1.host.registered.v1"

    accepted: list[str]
