"""Rules a single field cannot state: names unique within a system, depth within the limit,
and each agent's config valid for its type (against the schema the running system publishes).

Each finding carries the location of the offending field, as pydantic's errors do, so the
loader can point at the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from vsm.cli.organisation.model import Agent, Declared, Organisation

MAX_DEPTH = 5
"""A `vsm_id` has at most five segments below `root`."""

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    loc: Location
    message: str


def depth(vsm_id: str) -> int:
    return vsm_id.count("/")


def check(organisation: Organisation) -> list[Finding]:
    return list(_system(organisation, organisation.vsm_id, ()))


def _system(system: Declared, vsm_id: str, at: Location) -> list[Finding]:
    findings: list[Finding] = []
    owner: dict[str, int] = {}
    for index, agent in enumerate(system.agents):
        for name in agent.names():
            if name in owner:
                clash = f"agents[{owner[name]}]"
                message = f"agent name {name!r} is already declared by {clash} in {vsm_id}"
                findings.append(Finding((*at, "agents", index, "name"), message))
            owner.setdefault(name, index)
    children: set[str] = set()
    for index, child in enumerate(system.meta_systems):
        where = (*at, "meta_systems", index)
        child_id = f"{vsm_id}/{child.name}"
        if child.name in children:
            findings.append(Finding((*where, "name"), f"meta-system {child_id} is declared twice"))
        children.add(child.name)
        if depth(child_id) > MAX_DEPTH:
            limit = f"deeper than {MAX_DEPTH} levels below root"
            findings.append(Finding((*where, "name"), f"meta-system {child_id} is {limit}"))
            continue
        findings += _system(child, child_id, where)
    return findings


def declared_agents(system: Declared, at: Location = ()) -> Iterator[tuple[Location, Agent]]:
    """Every agent declaration in the tree, with its location in the file."""
    for index, agent in enumerate(system.agents):
        yield (*at, "agents", index), agent
    for index, child in enumerate(system.meta_systems):
        yield from declared_agents(child, (*at, "meta_systems", index))


def check_configs(organisation: Organisation, types: dict[str, dict[str, Any]]) -> list[Finding]:
    """Unknown types and configs their type's schema refuses (the system checks the rest)."""
    findings = []
    for at, agent in declared_agents(organisation):
        schema = types.get(agent.type)
        if schema is None:
            known = ", ".join(sorted(types))
            findings.append(Finding((*at, "type"), f"unknown agent type {agent.type!r} ({known})"))
            continue
        for error in Draft202012Validator(schema).iter_errors(agent.config):
            findings.append(Finding((*at, "config", *error.absolute_path), error.message))
    return findings
