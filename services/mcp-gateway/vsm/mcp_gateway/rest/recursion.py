"""REST for recursion and the causal trail (both S5's): meta-systems and `trace`.

A meta-system is spawned as a child of `?vsm_id=` (the root when absent); its own id is
that plus its `name`. Quotas, cycles and budgets are S5's and S3's to refuse: 404 for an
unknown system, 409 for an existing one, one that still has children or a quota reached
(`quota_exceeded`), 422 for a cycle or a budget exceeded.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.control import Resources
from vsm.contract.policy import IdentityConstraint, Text
from vsm.contract.recursion import (
    SEGMENT_PATTERN,
    MetaSystemDescription,
    MetaSystemInfo,
    MetaSystemQuery,
    MetaSystemTree,
    RetireMetaSystem,
    SpawnMetaSystem,
)
from vsm.contract.system5 import Trace, TraceQuery
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    CONFLICT,
    EDGE,
    LOOKUP,
    MUTATION,
    NOT_FOUND,
    BusDep,
    RestOperation,
    VsmIdParam,
    system,
)

ChildParam = Annotated[str, QueryParameter(name="vsm_id", required=True)]


class MetaSystemInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SEGMENT_PATTERN)
    purpose: Text
    values: list[Text] = Field(default_factory=list, max_length=32)
    constraints: list[IdentityConstraint] = Field(default_factory=list, max_length=64)
    budget: Resources


class RecursionController(Controller):
    path = "/api/vsm"
    tags = ["recursion"]

    @post("/meta-systems", status_code=201, responses=BODY | NOT_FOUND | CONFLICT | ASKS)
    async def spawn(
        self, bus: BusDep, data: JSONBody[MetaSystemInput], vsm_id: VsmIdParam = None
    ) -> MetaSystemInfo:
        """Spawn a child viable system of `vsm_id`, its budget carved from the parent's."""
        request = SpawnMetaSystem(**data.model_dump())
        reply = await bus.query(
            "queen", "meta.spawn", request, MetaSystemDescription, vsm_id=system(vsm_id)
        )
        return reply.meta_system

    @get("/meta-systems", responses=EDGE | LOOKUP, operation_class=RestOperation)
    async def children(self, bus: BusDep, vsm_id: VsmIdParam = None) -> MetaSystemTree:
        """The children of `vsm_id`, each with its budget, children and reported viability."""
        return await bus.query(
            "queen", "meta.list", MetaSystemQuery(), MetaSystemTree, vsm_id=system(vsm_id)
        )

    @delete(
        "/meta-systems",
        status_code=200,
        responses=MUTATION | LOOKUP | CONFLICT,
        operation_class=RestOperation,
    )
    async def retire(self, bus: BusDep, vsm_id: ChildParam) -> MetaSystemInfo:
        """Retire the child `vsm_id` (it must have no children); its budget returns."""
        child = system(vsm_id) or "root"
        request = RetireMetaSystem(vsm_id=child)
        reply = await bus.query(
            "queen", "meta.retire", request, MetaSystemDescription, vsm_id=child
        )
        return reply.meta_system

    @get(
        "/trace/{message_id:str}",
        responses=EDGE | NOT_FOUND | ASKS,
        operation_class=RestOperation,
    )
    async def trace(self, bus: BusDep, message_id: FromPath[str]) -> Trace:
        """The causal chain `message_id` belongs to (signal -> intervention -> policy ->
        allocation change ...), root first, with an indented human-readable `text`."""
        request = TraceQuery(message_id=message_id[:128])
        return await bus.query("queen", "trace", request, Trace)
