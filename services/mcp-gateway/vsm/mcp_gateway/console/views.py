"""What each page shows, as plain functions over the systems' answers: no I/O, no HTML.

Templates only lay these out; everything decided about what a person sees (states, order,
pagination, form fields from a JSON schema, a diff's rows, a trace's graph) is here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from vsm.contract.control import System3State
from vsm.contract.coordination import System2State
from vsm.contract.health import SystemStatus
from vsm.contract.operations import AgentInfo
from vsm.contract.policy import PolicyDiff
from vsm.contract.system5 import System5State, TraceStep

PER_PAGE = 50
MAP_UNITS = 12
ROLES = ("S5", "S4", "S3", "S2", "S1")
SERVICE_OF_ROLE = {
    "S5": "queen",
    "S4": "intelligence",
    "S3": "control",
    "S2": "coordinator",
    "S1": "operations",
}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    pages: int
    total: int


def paginate(items: list[Any], number: int, per_page: int = PER_PAGE) -> Page:
    pages = page_count(len(items), per_page)
    number = min(max(1, number), pages)
    start = (number - 1) * per_page
    return Page(items[start : start + per_page], number, pages, len(items))


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(total / per_page))


def service_states(status: SystemStatus | None) -> dict[str, str]:
    """Each system's state (up/degraded/down) by its role, `unknown` without an answer."""
    if status is None:
        return dict.fromkeys(ROLES, "unknown")
    by_service = {c.service: c.state for c in status.components}
    return {role: by_service.get(service, "down") for role, service in SERVICE_OF_ROLE.items()}


@dataclass(frozen=True)
class Unit:
    """An S1 unit as the map and the agents page show it."""

    agent_id: str
    label: str
    agent_type: str
    state: str
    slots: str
    rate: str
    trouble: int


def units(agents: list[AgentInfo], s3: System3State | None, s2: System2State | None) -> list[Unit]:
    """Every agent with its state in VSM terms: running, throttled (S3 holds it to a rate),
    damped (S2 holds its oscillation) or terminated."""
    rates = {a.agent_id: a.max_rate_per_s for a in s3.allocations} if s3 else {}
    damped = set(s2.damped) if s2 else set()
    shown = []
    for agent in agents:
        rate = rates.get(agent.agent_id)
        state: str
        if agent.state != "running":
            state = agent.state
        elif agent.agent_id in damped:
            state = "damped"
        elif rate is not None:
            state = "throttled"
        else:
            state = "running"
        shown.append(
            Unit(
                agent_id=agent.agent_id,
                label=agent.name or agent.agent_id,
                agent_type=agent.agent_type,
                state=state,
                slots=f"{agent.allocation}/{agent.max_allocation}",
                rate=f"{rate:g}/s" if rate is not None else "—",
                trouble={"damped": 2, "throttled": 1}.get(state, 0),
            )
        )
    return shown


def map_units(all_units: list[Unit]) -> tuple[list[Unit], dict[str, int]]:
    """The units the map draws (those in trouble first, at most `MAP_UNITS`) and the count of
    every state: the map stays one screen with 1,000 agents."""
    counts: dict[str, int] = {}
    for unit in all_units:
        counts[unit.state] = counts.get(unit.state, 0) + 1
    ordered = sorted(all_units, key=lambda u: (-u.trouble, u.label))
    return ordered[:MAP_UNITS], counts


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def gauge(value: float | None) -> float:
    """A 0..1 value as a width in percent for a bar (0 when unknown)."""
    return 0.0 if value is None else round(max(0.0, min(1.0, value)) * 100, 1)


def open_interventions(s5: System5State | None) -> list[Any]:
    if s5 is None:
        return []
    return [i for i in s5.interventions if i.status != "resolved"]


def trace_id(intervention: Any) -> str:
    """The message to trace an intervention from: the signal that opened it."""
    return str(intervention.opened_by or intervention.intervention_id)


def recovery(intervention: Any) -> str:
    """How long the intervention took to resolve, or `open`."""
    if intervention.resolved_at is None:
        return "open"
    seconds = (intervention.resolved_at - intervention.opened_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# Forms from JSON schemas ----------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str
    """text, integer, number, boolean, choice or json (anything structured)."""
    required: bool
    default: str
    description: str = ""
    choices: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        return {**resolved, **{k: v for k, v in schema.items() if k != "$ref"}}
    options = schema.get("anyOf")
    if isinstance(options, list):  # `X | None`: the form shows X, empty means null
        real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(real) == 1:
            return {**_resolve(real[0], root), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


KINDS = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}


def form_fields(schema: dict[str, Any], prefix: str = "") -> list[FormField]:
    """One field per property of an object schema; nested objects and lists are JSON."""
    fields = []
    required = set(schema.get("required", []))
    for name, raw in (schema.get("properties") or {}).items():
        spec = _resolve(raw, schema)
        kind = "choice" if "enum" in spec else KINDS.get(spec.get("type", ""), "json")
        default = spec.get("default")
        fields.append(
            FormField(
                name=f"{prefix}{name}",
                label=str(raw.get("title") or name).replace("_", " "),
                kind=kind,
                required=name in required,
                default="" if default is None else json.dumps(default) if kind == "json"
                else str(default).lower() if isinstance(default, bool) else str(default),
                description=str(spec.get("description") or ""),
                choices=[str(c) for c in spec.get("enum", [])],
                minimum=spec.get("minimum", spec.get("exclusiveMinimum")),
                maximum=spec.get("maximum", spec.get("exclusiveMaximum")),
                pattern=spec.get("pattern"),
            )
        )  # fmt: skip
    return fields


# Policies and traces --------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    key: str
    change: str
    """added, removed or changed."""
    before: str
    after: str


def _shown(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def diff_rows(diff: PolicyDiff) -> list[DiffRow]:
    rows = [DiffRow(k, "added", "", _shown(v)) for k, v in diff.added.items()]
    rows += [DiffRow(k, "removed", _shown(v), "") for k, v in diff.removed.items()]
    rows += [
        DiffRow(k, "changed", _shown(c.before), _shown(c.after)) for k, c in diff.changed.items()
    ]
    return sorted(rows, key=lambda r: r.key)


@dataclass(frozen=True)
class Node:
    step: TraceStep
    x: int
    y: int
    kind: str


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


NODE_W, NODE_H, GAP_X, GAP_Y = 220, 56, 40, 16
KIND_OF_TYPE = {
    "adaptation": "adaptation",
    "escalation": "alert",
    "algedonic": "signal",
    "intervention": "intervention",
    "policy": "policy",
    "allocation": "allocation",
    "rescheduled": "reschedule",
    "operator": "alert",
    "alert": "alert",
}


def kind_of(message_type: str) -> str:
    return next((k for part, k in KIND_OF_TYPE.items() if part in message_type), "other")


def trace_graph(chain: list[TraceStep]) -> Graph:
    """The causal chain as a tree laid out left to right: depth is the column, the chain's
    order the row; an edge runs from each cause to what it caused."""
    nodes = [
        Node(step, step.depth * (NODE_W + GAP_X), row * (NODE_H + GAP_Y), kind_of(step.type))
        for row, step in enumerate(chain)
    ]
    where = {n.step.id: n for n in nodes}
    edges = [
        Edge(cause.x + NODE_W, cause.y + NODE_H // 2, n.x, n.y + NODE_H // 2)
        for n in nodes
        if n.step.causation_id and (cause := where.get(n.step.causation_id)) is not None
    ]
    width = max((n.x for n in nodes), default=0) + NODE_W
    height = max((n.y for n in nodes), default=0) + NODE_H
    return Graph(nodes, edges, width, height)
