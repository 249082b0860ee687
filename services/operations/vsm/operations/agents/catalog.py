"""Every agent type operations can spawn, by name."""

from __future__ import annotations

from functools import cache

from vsm.contract.agent_types import AgentTypeManifest
from vsm.contract.operations import AgentTypeInfo
from vsm.operations.agents.api import API
from vsm.operations.agents.base import AgentType
from vsm.operations.agents.llm_worker import LLM_WORKER
from vsm.operations.agents.sensor import SENSOR
from vsm.operations.agents.worker import WORKER

AGENT_TYPES: dict[str, AgentType] = {t.name: t for t in (WORKER, LLM_WORKER, SENSOR, API)}


@cache
def describe_types() -> list[AgentTypeInfo]:
    return [
        AgentTypeInfo(
            agent_type=t.name,
            description=t.description,
            capabilities=dict(t.capabilities),
            config_schema=t.config_model.model_json_schema(),
            commands={name: command.info() for name, command in t.commands.items()},
        )
        for t in AGENT_TYPES.values()
    ]


@cache
def built_in_manifests() -> dict[str, AgentTypeManifest]:
    """The built-in types as manifests: a host may not offer a type under one of their names."""
    return {
        t.agent_type: AgentTypeManifest(
            name=t.agent_type,
            version="built-in",
            description=t.description,
            config_schema=t.config_schema,
            commands=t.commands,
        )
        for t in describe_types()
    }
