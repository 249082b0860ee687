"""REST for operator alerts: the alerts S5 raised for a viable system, and their acknowledgement.

Alerts are read from S5's state (each intervention names the alerts it raised). An
acknowledgement is the same `AlertAcknowledgement` the Telegram button sends, on
`vsm.operators` (key `ack.alert`): S5 stops escalating the intervention. 404 for an alert S5
does not know, 409 for one that is no longer open.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from vsm.contract import topology
from vsm.contract.system5 import (
    ACK_KEY,
    AlertAcknowledgement,
    InterventionState,
    System5Query,
    System5State,
)
from vsm.kit.bus import Bus
from vsm.mcp_gateway.rest.common import (
    ASKS,
    BODY,
    CONFLICT,
    EDGE,
    NOT_FOUND,
    PARAMS,
    BusDep,
    RestOperation,
    VsmIdParam,
    system,
)

AlertStatus = Literal["open", "acknowledged", "resolved"]


class OperatorAlertView(BaseModel):
    alert_id: str
    intervention_id: str
    vsm_id: str
    severity: Literal["warning", "critical"]
    escalation_level: int
    title: str
    status: AlertStatus
    opened_at: datetime


class AcknowledgeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1024)


class Acknowledged(BaseModel):
    alert_id: str
    intervention_id: str
    by: str
    message_id: str


def alert_status(intervention: InterventionState) -> AlertStatus:
    if intervention.status == "escalated":
        return "open"
    return "acknowledged" if intervention.status == "acknowledged" else "resolved"


def alerts_of(state: System5State) -> list[OperatorAlertView]:
    """Every alert of the system's interventions, newest first (level n raised the n-th)."""
    views = [
        OperatorAlertView(
            alert_id=alert_id,
            intervention_id=i.intervention_id,
            vsm_id=i.vsm_id,
            severity="warning" if level == 1 else "critical",
            escalation_level=level,
            title=f"{i.vsm_id}: {i.trigger} unresolved",
            status=alert_status(i),
            opened_at=i.opened_at,
        )
        for i in state.interventions
        for level, alert_id in enumerate(i.alert_ids, start=1)
    ]
    return sorted(views, key=lambda a: (a.opened_at, a.escalation_level), reverse=True)


def named(via: str, authorization: str | None) -> str:
    """Who acts: `<via>:` and the token's short digest (never the token), as Telegram names
    a user."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return f"{via}:" + hashlib.sha256(token.strip().encode()).hexdigest()[:8]
    return via


def caller(request: Request[Any, Any, Any]) -> str:
    """Read from the scope itself: the console's bridge adds the session's bearer header
    after Litestar may have cached the headers it saw first."""
    raw = (v for k, v in request.scope["headers"] if k.lower() == b"authorization")
    return named("api", next((v.decode("latin-1") for v in raw), None))


async def acknowledge(
    bus: Bus, alert_id: str, by: str, note: str, vsm_id: str | None
) -> Acknowledged:
    state = await bus.query("queen", "state", System5Query(), System5State, vsm_id=vsm_id)
    alert = next((a for a in alerts_of(state) if a.alert_id == alert_id), None)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r} in {state.vsm_id}")
    if alert.status != "open":
        raise HTTPException(status_code=409, detail=f"alert {alert_id!r} is {alert.status}")
    sent = await bus.publish(
        topology.OPERATORS,
        AlertAcknowledgement(alert_id=alert_id, by=by, note=note),
        routing_key=ACK_KEY,
        vsm_id=alert.vsm_id,
    )
    return Acknowledged(
        alert_id=alert_id, intervention_id=alert.intervention_id, by=by, message_id=sent.id
    )


class OperatorsController(Controller):
    path = "/api/vsm"
    tags = ["operators"]

    @get("/alerts", responses=EDGE | PARAMS | ASKS, operation_class=RestOperation)
    async def alerts(self, bus: BusDep, vsm_id: VsmIdParam = None) -> list[OperatorAlertView]:
        """Operator alerts S5 raised for the viable system's interventions, newest first."""
        query = System5Query()
        state = await bus.query("queen", "state", query, System5State, vsm_id=system(vsm_id))
        return alerts_of(state)

    @post(
        "/alerts/{alert_id:str}/acknowledge",
        status_code=202,
        responses=BODY | NOT_FOUND | CONFLICT | ASKS,
    )
    async def acknowledge(
        self,
        bus: BusDep,
        request: Request[Any, Any, Any],
        alert_id: FromPath[str],
        data: JSONBody[AcknowledgeInput],
        vsm_id: VsmIdParam = None,
    ) -> Acknowledged:
        """Acknowledge an open alert (as the Telegram button does): S5 stops escalating."""
        return await acknowledge(bus, alert_id[:128], caller(request), data.note, system(vsm_id))
