"""`worker`: deterministic data work (checksums, transforms, statistics), no outside calls."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.agent import Agent, JsonObject, command
from vsm.operations.agents.analysis import describe
from vsm.operations.agents.base import AgentConfig, CommandFailed
from vsm.operations.agents.sdk import hosted_type


class WorkerConfig(AgentConfig):
    pass


class ProcessData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any = Field(description="Any JSON value.")


class Checksum(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checksum: str = Field(description="sha256 of the canonical JSON, hex.")
    size_bytes: int = Field(ge=0, description="Length of the canonical JSON in bytes.")


class Transform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Literal["uppercase", "aggregate"]
    data: Any = Field(
        description="Any JSON value; a list (of numbers, or of objects) to aggregate."
    )
    group_by: str | None = Field(
        default=None, max_length=128, description="Aggregate per value of this key."
    )
    field: str | None = Field(
        default=None, max_length=128, description="The number to aggregate, with `group_by`."
    )


class Analyze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[float] = Field(min_length=1, max_length=1_000_000, description="Numbers.")


class Statistics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int
    mean: float
    median: float
    stdev: float
    min: float
    max: float
    trend: Literal["stable", "increasing", "decreasing"]
    pattern: Literal[
        "constant", "monotonic_increasing", "monotonic_decreasing", "alternating", "irregular"
    ]


def canonical(data: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def uppercase(data: Any) -> Any:
    if isinstance(data, str):
        return data.upper()
    if isinstance(data, list):
        return [uppercase(item) for item in data]
    if isinstance(data, dict):
        return {key: uppercase(value) for key, value in data.items()}
    return data


def aggregate(data: Any, group_by: str | None, field: str | None) -> dict[str, Any]:
    """Sum/count/mean of numbers, or of `field` per `group_by` value over a list of objects."""
    if not isinstance(data, list):
        raise CommandFailed("invalid_command", "aggregate needs a list")
    if group_by is None:
        numbers = [_number(v, "data") for v in data]
        return _totals(numbers)
    if field is None:
        raise CommandFailed("invalid_command", "aggregate by group needs `field`")
    groups: dict[str, list[float]] = defaultdict(list)
    for row in data:
        if not isinstance(row, dict) or group_by not in row:
            raise CommandFailed("invalid_command", f"every row needs `{group_by}`")
        groups[str(row[group_by])].append(_number(row.get(field), field))
    return {"groups": {key: _totals(values) for key, values in groups.items()}}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandFailed("invalid_command", f"{where}: {value!r} is not a number")
    return float(value)


def _totals(numbers: list[float]) -> dict[str, Any]:
    total = sum(numbers)
    return {"count": len(numbers), "sum": total, "mean": total / len(numbers) if numbers else None}


class Worker(Agent[WorkerConfig]):
    """Deterministic data work: checksums, transforms and statistics."""

    name = "worker"

    @command(description="sha256 `checksum` of the canonical JSON of `data`")
    async def process_data(self, request: ProcessData) -> Checksum:
        form = canonical(request.data)  # once: the checksum's bytes and their size
        return Checksum(checksum=hashlib.sha256(form).hexdigest(), size_bytes=len(form))

    @command(description="`operation` uppercase or aggregate (optionally `group_by` + `field`)")
    async def transform(self, request: Transform) -> JsonObject:
        if request.operation == "uppercase":
            return JsonObject({"data": uppercase(request.data)})
        return JsonObject(aggregate(request.data, request.group_by, request.field))

    @command(description="count, mean, median, stdev, min, max, trend and pattern of `values`")
    async def analyze(self, request: Analyze) -> Statistics:
        return Statistics.model_validate(describe(request.values))


WORKER = hosted_type(Worker, built_in=True)
