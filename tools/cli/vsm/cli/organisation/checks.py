"""Rules a single field cannot state: names unique within a system, depth within the limit,
S4 rules and agents' rules that compile (docs/rules.md), and each agent's config valid for
its type (against the schema the running system publishes).

Each finding carries the location of the offending field, as pydantic's errors do, so the
loader can point at the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import ValidationError

from vsm.cli.organisation.model import Agent, Declared, Organisation
from vsm.contract.rules import RuleDeclaration, RuleError, compile_rule

MAX_DEPTH = 5
"""A `vsm_id` has at most five segments below `root`."""

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    loc: Location
    message: str
    text_line: int | None = None
    """For a problem inside a rule's text: its line there (the file's line is counted on)."""


def depth(vsm_id: str) -> int:
    return vsm_id.count("/")


def check(organisation: Organisation) -> list[Finding]:
    return [*_system(organisation, organisation.vsm_id, ()), *check_rules(organisation)]


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


def check_rules(system: Declared, at: Location = ()) -> list[Finding]:
    """Every S4 rule and every rule in an agent's config compiles (the running system also
    checks the readings its sources have; here: syntax, outcomes and bounded windows)."""
    findings = [
        finding
        for index, declared in enumerate(system.rules or [])
        for finding in _compiled(declared, (*at, "rules", index))
    ]
    for index, agent in enumerate(system.agents):
        rules = agent.config.get("rules")
        for number, entry in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(entry, dict) and "when" in entry:
                where = (*at, "agents", index, "config", "rules", number)
                findings += _declared(entry, where)
    for index, child in enumerate(system.meta_systems):
        findings += check_rules(child, (*at, "meta_systems", index))
    return findings


def _declared(entry: dict[str, Any], at: Location) -> list[Finding]:
    try:
        declared = RuleDeclaration.model_validate(entry)
    except ValidationError as error:
        return [Finding((*at, *e["loc"]), e["msg"]) for e in error.errors(include_url=False)]
    return _compiled(declared, at)


def _compiled(declared: RuleDeclaration, at: Location) -> list[Finding]:
    try:
        compile_rule(declared)
    except RuleError as error:
        message = f"column {error.column}: {error.message}"
        return [Finding((*at, error.field), message, error.line)]
    return []
