"""Health of the services: the periodic report each sends, and S5's view of all of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.contract.message import Message

__all__ = [
    "ComponentStatus",
    "HealthReport",
    "HostStatus",
    "Ping",
    "Pong",
    "ServiceState",
    "StatusQuery",
    "SystemStatus",
]

ServiceState = Literal["up", "degraded", "down"]


class HealthReport(Message):
    """Sent by every service instance every `HEALTH_INTERVAL` seconds on `vsm.health`."""

    TYPE: ClassVar[str] = "vsm.health.report.v1"

    service: str = Field(min_length=1, max_length=64)
    instance: str = Field(min_length=1, max_length=128)
    role: str = Field(max_length=16)
    state: Literal["up", "degraded"]
    interval_s: float = Field(gt=0, le=3600)
    started_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class StatusQuery(Message):
    """Ask S5 for the state of the whole system."""

    TYPE: ClassVar[str] = "vsm.status.query.v1"


class ComponentStatus(BaseModel):
    """One deployable as S5 sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    role: str
    state: ServiceState
    last_seen: datetime | None
    instances: int = 0
    details: dict[str, Any] = Field(default_factory=dict)


class HostStatus(BaseModel):
    """One agent host as S5 hears it: the types it offers and the agents it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: str
    state: ServiceState
    last_seen: datetime
    offers: list[str] = Field(default_factory=list)
    agents: int = 0


class SystemStatus(Message):
    """S5's answer: every deployable with its state and when it was last heard from."""

    TYPE: ClassVar[str] = "vsm.status.v1"

    vsm_id: str
    state: ServiceState
    components: list[ComponentStatus]
    viability: float | None = Field(default=None, description="S5's viability score (0..1).")
    viability_coverage: float | None = Field(
        default=None, description="Share of the viability formula's weight actually measured."
    )
    hosts: list[HostStatus] = Field(
        default_factory=list,
        description="The agent hosts heard lately (`vsm-agent run`), with what they offer.",
    )


class Ping(Message):
    """Any service answers a ping on its requests queue: a cheap end-to-end liveness check."""

    TYPE: ClassVar[str] = "vsm.ping.v1"


class Pong(Message):
    TYPE: ClassVar[str] = "vsm.pong.v1"

    service: str
    instance: str
