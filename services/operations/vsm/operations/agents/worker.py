"""`worker`: deterministic data work (checksums, transforms, statistics), no outside calls."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsm.operations.agents.analysis import describe
from vsm.operations.agents.base import AgentConfig, AgentType, CommandFailed, Passive, Resources


class WorkerConfig(AgentConfig):
    pass


class ProcessData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any


class Transform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Literal["uppercase", "aggregate"]
    data: Any
    group_by: str | None = Field(default=None, max_length=128)
    field: str | None = Field(default=None, max_length=128)


class Analyze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[float] = Field(min_length=1, max_length=1_000_000)


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


class Worker(Passive):
    async def execute(self, command: str, data: dict[str, Any]) -> dict[str, Any]:
        if command == "process_data":
            payload = ProcessData.model_validate(data).data
            return {"checksum": checksum(payload), "size_bytes": len(canonical(payload))}
        if command == "transform":
            request = Transform.model_validate(data)
            if request.operation == "uppercase":
                return {"data": uppercase(request.data)}
            return aggregate(request.data, request.group_by, request.field)
        return describe(Analyze.model_validate(data).values)


def build(config: WorkerConfig, resources: Resources) -> Worker:
    return Worker()


WORKER = AgentType(
    name="worker",
    description="Deterministic data work: checksums, transforms and statistics.",
    config_model=WorkerConfig,
    capabilities={
        "process_data": "sha256 `checksum` of the canonical JSON of `data`",
        "transform": "`operation` uppercase or aggregate (optionally `group_by` + `field`)",
        "analyze": "count, mean, median, stdev, min, max, trend and pattern of `values`",
    },
    build=build,
)
