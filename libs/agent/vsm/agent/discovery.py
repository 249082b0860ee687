"""Agent types published by installed packages, through the `vsm.agent_types` entry points.

A package declares, in its `pyproject.toml`:

    [project.entry-points."vsm.agent_types"]
    greeter = "my_agents.greeter:Greeter"

An entry point names an agent class, or a list (or tuple) of them. One that cannot be
imported, names something else, or names a type that clashes with one found before is a
`DiscoveryProblem` naming the package: it is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from vsm.agent.definition import Agent, definition
from vsm.agent.registry import TypeRegistry
from vsm.contract.errors import Refused

__all__ = ["ENTRY_POINT_GROUP", "DiscoveredType", "Discovery", "DiscoveryProblem", "discover"]

ENTRY_POINT_GROUP = "vsm.agent_types"
log = logging.getLogger("vsm.agent.discovery")


@dataclass(frozen=True)
class DiscoveredType:
    agent_class: type[Agent[Any]]
    source: str
    """`<package> <version>: <entry point>`, as problems and clashes name it."""


@dataclass(frozen=True)
class DiscoveryProblem:
    package: str
    entry_point: str
    error: str

    def __str__(self) -> str:
        return f"{self.package}: entry point {self.entry_point}: {self.error}"


@dataclass(frozen=True)
class Discovery:
    types: tuple[DiscoveredType, ...]
    problems: tuple[DiscoveryProblem, ...]


def _package(entry: EntryPoint) -> str:
    dist = entry.dist
    return "an unknown package" if dist is None else f"{dist.name} {dist.version}"


def _classes(loaded: object) -> list[type[Agent[Any]]]:
    """The agent classes an entry point's object stands for (`TypeError` when not one)."""
    items: list[object] = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
    found = [item for item in items if isinstance(item, type) and issubclass(item, Agent)]
    if not items or len(found) != len(items):
        bad = [item for item in items if item not in found]
        raise TypeError(f"{bad[0] if bad else loaded!r} is not a vsm.agent.Agent subclass")
    return found


def discover(
    group: str = ENTRY_POINT_GROUP,
    registry: TypeRegistry | None = None,
    found: Iterable[EntryPoint] | None = None,
) -> Discovery:
    """Load every entry point of `group` (or those given): each type checked and registered
    in `registry` (a new one when none is given, so types of two packages are checked
    against each other), each failure a problem (logged)."""
    registry = registry if registry is not None else TypeRegistry()
    types: list[DiscoveredType] = []
    problems: list[DiscoveryProblem] = []
    for entry in entry_points(group=group) if found is None else found:
        package = _package(entry)
        source = f"{package}: {entry.name} = {entry.value}"
        try:
            read = [definition(agent_class) for agent_class in _classes(entry.load())]
        except Exception as error:
            problems.append(
                DiscoveryProblem(package, entry.name, f"{type(error).__name__}: {error}")
            )
            continue
        for agent_type in read:
            try:
                if registry.register(agent_type.manifest(), source):
                    types.append(DiscoveredType(agent_type.agent_class, source))
            except Refused as clash:
                problems.append(DiscoveryProblem(package, entry.name, clash.message))
    for problem in problems:
        log.warning("skipped an agent type entry point: %s", problem)
    return Discovery(tuple(types), tuple(problems))
