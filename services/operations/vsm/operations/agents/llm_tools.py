"""The tools an llm_worker can run for the model; a config offers it a subset by name."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vsm.operations.agents.analysis import describe


class ChecksumInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=1_000_000)


class StatisticsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[float] = Field(min_length=1, max_length=100_000)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel] | None
    run: Callable[[Any], dict[str, Any]]

    def definition(self) -> dict[str, Any]:
        schema = (
            self.input_model.model_json_schema()
            if self.input_model
            else {"type": "object", "properties": {}}
        )
        return {"name": self.name, "description": self.description, "input_schema": schema}

    def call(self, arguments: Any) -> dict[str, Any]:
        parsed = self.input_model.model_validate(arguments) if self.input_model else None
        return self.run(parsed)


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "checksum",
            "SHA-256 hex digest of a UTF-8 text.",
            ChecksumInput,
            lambda args: {"sha256": hashlib.sha256(args.text.encode()).hexdigest()},
        ),
        Tool(
            "statistics",
            "Count, mean, median, stdev, min, max, trend and pattern of numbers.",
            StatisticsInput,
            lambda args: describe(args.values),
        ),
        Tool(
            "current_time",
            "The current UTC time in ISO 8601.",
            None,
            lambda _: {"utc": datetime.now(UTC).isoformat()},
        ),
    )
}
