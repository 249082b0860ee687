"""`sensor`: periodic readings from a source, threshold rules that raise algedonic pain."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from vsm.operations.agents.base import (
    AgentConfig,
    AgentType,
    CommandFailed,
    Crash,
    Feel,
    Resources,
)
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.readings import host_metrics, http_metrics
from vsm.operations.algedonics import Feeling

NAME = "sensor"
CRASH_BACKOFF_S = 1.0


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(min_length=1, max_length=256)
    above: float | None = None
    below: float | None = None
    intensity: float = Field(default=0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _has_a_bound(self) -> Rule:
        if self.above is None and self.below is None:
            raise ValueError("a rule needs `above` or `below`")
        return self

    def breached(self, reading: dict[str, float]) -> bool:
        value = reading.get(self.metric)
        if value is None:
            return False
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )


class SensorConfig(AgentConfig):
    source: Literal["host", "http"] = "host"
    url: HttpUrl | None = None
    interval_s: float = Field(default=5.0, ge=0.05, le=3600)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    rules: list[Rule] = Field(default_factory=list, max_length=64)
    history: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _url_for_http(self) -> SensorConfig:
        if self.source == "http" and self.url is None:
            raise ValueError("an http sensor needs `url`")
        return self


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last: int = Field(default=10, ge=1, le=10_000)


class Sensor:
    def __init__(self, config: SensorConfig, outbound: Outbound) -> None:
        self.config = config
        self.outbound = outbound
        self.readings: deque[dict[str, Any]] = deque(maxlen=config.history)
        self.breached: set[int] = set()
        self.episodes = 0
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> dict[str, float]:
        if self.config.source == "host":
            return host_metrics()
        return await http_metrics(self.outbound, NAME, str(self.config.url), self.config.timeout_s)

    def judge(self, reading: dict[str, float]) -> list[tuple[Rule, bool]]:
        """Which rules changed state: (rule, now breached); one entry per edge, not per sample."""
        edges = []
        for index, rule in enumerate(self.config.rules):
            breached = rule.breached(reading)
            if breached != (index in self.breached):
                (self.breached.add if breached else self.breached.discard)(index)
                edges.append((rule, breached))
        return edges

    async def sample(self, feel: Feel | None) -> dict[str, Any]:
        values = await self.read()
        entry = {"at": time.time(), "values": values}
        self.readings.append(entry)
        for rule, breached in self.judge(values):
            if breached and feel is not None:
                self.episodes += 1
                await feel(
                    Feeling(
                        kind="pain",
                        intensity=rule.intensity,
                        reason="threshold_breached",
                        episode=f"sensor:{rule.metric}:{self.episodes}",
                        context={rule.metric: values[rule.metric]},
                    )
                )
        return {**entry, "breached": [self.config.rules[i].metric for i in sorted(self.breached)]}

    async def execute(self, command: str, data: dict[str, Any]) -> dict[str, Any]:
        if command == "read":
            try:
                return await self.sample(None)
            except (httpx.HTTPError, ValueError) as error:
                raise CommandFailed("source_unavailable", str(error) or repr(error)) from error
        last = History.model_validate(data).last
        return {"readings": list(self.readings)[-last:]}

    def state(self) -> dict[str, Any]:
        return {
            "source": self.config.source,
            "readings": len(self.readings),
            "breached": [self.config.rules[i].metric for i in sorted(self.breached)],
            "last": self.readings[-1] if self.readings else None,
        }

    async def start(self, feel: Feel, crash: Crash) -> None:
        self._task = asyncio.create_task(self._run(feel, crash), name="sensor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, feel: Feel, crash: Crash) -> None:
        while True:
            try:
                await self.sample(feel)
            except Exception as error:  # a failing source is reported, the loop goes on
                await crash(error)
                await asyncio.sleep(CRASH_BACKOFF_S)
            await asyncio.sleep(self.config.interval_s)


def build(config: SensorConfig, resources: Resources) -> Sensor:
    return Sensor(config, resources.outbound)


def destinations(config: SensorConfig) -> list[tuple[str, str]]:
    return [("config.url", str(config.url))] if config.source == "http" else []


SENSOR = AgentType(
    name=NAME,
    description="Samples host metrics or an HTTP JSON endpoint (within the operator's egress "
    "policy); threshold rules raise pain.",
    config_model=SensorConfig,
    capabilities={"read": "take a reading now", "history": "the `last` N readings"},
    build=build,
    destinations=destinations,
)
