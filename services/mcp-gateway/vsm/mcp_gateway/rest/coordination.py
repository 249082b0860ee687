"""REST for System 2: its state, coordinated messages between S1 units, and scheduled work.

State and notes are requests to `coordinator`; an unknown or terminated agent answers 404,
a pair of units writing too often 429. Work for a running agent (else 404) is published as
a `WorkItem` on `vsm.coordination` (key `work.<lane>`) for S2 to schedule fairly: 202 with
its command id; its result appears on the agent's results exchange. Routes take an optional
`vsm_id`.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.coordination import (
    LANE_PATTERN,
    CoordinateMessage,
    CoordinationReceipt,
    System2Query,
    System2State,
    WorkItem,
    work_key,
)
from vsm.contract.errors import Refused
from vsm.contract.operations import AGENT_ID_PATTERN, COMMAND_PATTERN, AgentDescription, GetAgent
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    EDGE,
    NOT_FOUND,
    PARAMS,
    BusDep,
    RestOperation,
    VsmIdParam,
    errors,
    on_refused,
    refused,
    system,
)

TOPIC_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class NoteInput(BaseModel):
    """A note from one S1 unit to another, delivered by S2 into the addressee's inbox."""

    model_config = ConfigDict(extra="forbid")

    from_agent: str = Field(pattern=AGENT_ID_PATTERN)
    to_agent: str = Field(pattern=AGENT_ID_PATTERN)
    topic: str = Field(min_length=1, max_length=64, pattern=TOPIC_PATTERN)
    content: dict[str, Any] = Field(default_factory=dict)


class WorkInput(BaseModel):
    """A command for `agent_id`, queued in `lane` at `weight` (its share against other lanes)."""

    model_config = ConfigDict(extra="forbid")

    lane: str = Field(pattern=LANE_PATTERN)
    weight: int = Field(default=1, ge=1, le=1000)
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    command_type: str = Field(pattern=COMMAND_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)


class WorkAccepted(BaseModel):
    command_id: str
    lane: str


def on_note_refused(request: Request[Any, Any, Any], error: Refused) -> Response[Any]:
    """Too many notes between one pair is the sender's doing: 429, not a system failure."""
    if error.code == "rate_limited":
        return refused(error, 429)
    return on_refused(request, error)


class System2Controller(Controller):
    path = "/api/vsm"
    tags = ["system 2"]
    exception_handlers = {Refused: on_note_refused}

    @get("/system/2", responses=EDGE | PARAMS | ASKS, operation_class=RestOperation)
    async def state(self, bus: BusDep, vsm_id: VsmIdParam = None) -> System2State:
        """S2: lanes, each agent's capacity and commands in flight, oscillation, damping."""
        query = System2Query()
        return await bus.query("coordinator", "state", query, System2State, vsm_id=system(vsm_id))

    @post(
        "/coordination/messages",
        status_code=200,
        responses=BODY | NOT_FOUND | errors(429) | ASKS,
    )
    async def coordinate(
        self, bus: BusDep, data: JSONBody[NoteInput], vsm_id: VsmIdParam = None
    ) -> CoordinationReceipt:
        """A coordinated message between two running S1 units (404 if either is unknown)."""
        request = CoordinateMessage(**data.model_dump())
        return await bus.query(
            "coordinator", "coordinate", request, CoordinationReceipt, vsm_id=system(vsm_id)
        )

    @post("/work", status_code=202, responses=BODY | NOT_FOUND | ASKS)
    async def work(
        self, bus: BusDep, data: JSONBody[WorkInput], vsm_id: VsmIdParam = None
    ) -> WorkAccepted:
        """Submit work for S2's fair-share scheduling (published on `vsm.coordination`); 404
        for an agent that is not running (its work would only be parked as a dead letter)."""
        await bus.query("operations", "get", GetAgent(agent_id=data.agent_id), AgentDescription)
        item = WorkItem(command_id=str(uuid.uuid4()), **data.model_dump())
        await bus.publish(
            topology.COORDINATION, item, routing_key=work_key(item.lane), vsm_id=system(vsm_id)
        )
        return WorkAccepted(command_id=item.command_id, lane=item.lane)
