"""Argument types shared by the MCP tools: their constraints become the input schemas."""

from typing import Annotated, Any

from mcp_types import ToolAnnotations
from pydantic import Field

from vsm.contract.operations import AGENT_ID_PATTERN

VsmIdArg = Annotated[
    str | None,
    Field(
        pattern=r"^root(/[a-z0-9][a-z0-9-]{0,39}){0,5}$",
        max_length=256,
        description="Viable system path, e.g. `root/logistics` (default: the root).",
    ),
]
Context = Annotated[
    dict[str, Any], Field(default_factory=dict, description="Free-form facts for S5.")
]
AnomalyType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Level = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN, description="The agent's id.")]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADDITIVE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
"""Adds to the system (a signal, an agent, a request): nothing in force is replaced."""
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False)
"""May replace or take away what is in force (a policy, others' allocations, an agent's work)."""
