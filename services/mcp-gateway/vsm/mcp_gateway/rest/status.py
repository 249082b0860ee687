"""REST for the whole viable system: every system and gateway with its state."""

from __future__ import annotations

from litestar import Controller, get

from vsm.contract.health import StatusQuery, SystemStatus
from vsm.mcp_gateway.rest.common import ASKS, EDGE, BusDep


class SystemController(Controller):
    path = "/api/vsm"
    tags = ["system"]

    @get("/status", responses=EDGE | ASKS)
    async def status(self, bus: BusDep) -> SystemStatus:
        """Every system and gateway with its state (up/degraded/down) and last-seen time."""
        return await bus.query("queen", "status", StatusQuery(), SystemStatus)
