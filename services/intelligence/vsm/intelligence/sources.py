"""The outside environment: HTTP JSON endpoints an operator names, polled for readings.

A source is a URL (within the operator's egress allow-list), an interval, and named
readings, each a simple JSON path into the document: `$.current.temp`, `$.items[0].price`,
`$["odd key"].value` (the `$` may be left out). Every poll that yields at least one number
is a fact `source.<name>` whose readings are `<name>.<reading>`, feeding the system's
anomaly detection and rules. Any other answer is a failure of a kind from a fixed list
(the metric's label): `timeout`, `unreachable`, `refused`, `http_status`, `not_json`,
`no_reading`. Pure: the HTTP call is the poller's (polling.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

from vsm.contract.envelope import VsmId
from vsm.contract.rules import Fact, Vocabulary

Failure = Literal["timeout", "unreachable", "refused", "http_status", "not_json", "no_reading"]
FAILURES: tuple[Failure, ...] = (
    "timeout",
    "unreachable",
    "refused",
    "http_status",
    "not_json",
    "no_reading",
)
STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d{1,6})\]|\[\"([^\"\]]{1,128})\"\]")
Step = str | int


def steps(path: str) -> tuple[Step, ...]:
    """The keys and indexes of a JSON path; `ValueError` saying where it went wrong."""
    text = path[1:] if path.startswith("$") else "." + path if path[:1].isalpha() else path
    found: list[Step] = []
    at = 0
    while at < len(text):
        match = STEP.match(text, at)
        if match is None:
            raise ValueError(f"bad JSON path {path!r} at {text[at : at + 16]!r}")
        key, index, quoted = match.groups()
        found.append(int(index) if index is not None else key or quoted)
        at = match.end()
    if not found:
        raise ValueError(f"the JSON path {path!r} names nothing")
    return tuple(found)


def _valid_path(path: str) -> str:
    steps(path)
    return path


JsonPath = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_valid_path)]
ReadingName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")]


class SourceConfig(BaseModel):
    """One outside source, as the operator configures it (`S4_SOURCES`, a JSON list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    url: HttpUrl
    readings: dict[ReadingName, JsonPath] = Field(min_length=1, max_length=32)
    interval_s: float = Field(default=60.0, ge=1, le=86_400)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    vsm_id: VsmId | None = Field(default=None, description="whose environment (S4's root)")


def at_path(document: Any, path: tuple[Step, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(document, list) or step >= len(document):
                return None
            document = document[step]
        elif isinstance(document, dict) and step in document:
            document = document[step]
        else:
            return None
    return document


def extract(source: SourceConfig, body: bytes) -> dict[str, float] | Failure:
    """The readings found in a JSON document (finite numbers only), or why there are none."""
    try:
        document = json.loads(body)
    except ValueError:  # bad UTF-8 and bad JSON alike
        return "not_json"
    found = {}
    for name, path in source.readings.items():
        value = at_path(document, steps(path))
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[f"{source.name}.{name}"] = float(value)
    return found or "no_reading"


def fact_of(source: SourceConfig, readings: Mapping[str, float], at: float) -> Fact:
    return Fact(at, f"source.{source.name}", dict(readings), {"source": source.name})


def vocabulary(sources: list[SourceConfig]) -> Vocabulary:
    """A rule naming `<source>.<reading>` of a configured source must name one it reads."""
    by_name = {s.name: s for s in sources}

    def problem(name: str) -> str | None:
        head, _, rest = name.partition(".")
        source = by_name.get(head)
        if source is None or rest in source.readings:
            return None
        return f"source {head!r} reads no {rest!r} (it reads {', '.join(sorted(source.readings))})"

    return problem


@dataclass
class SourceState:
    """How one source's polls went (for the status)."""

    polls: int = 0
    failures: int = 0
    last_failure: Failure | None = None
    last_readings: dict[str, float] = field(default_factory=dict)
