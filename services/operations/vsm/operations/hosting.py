"""An agent host: `vsm-agent run my_package.agents` (or `python -m vsm.agent run ...`).

It offers the SDK agent types it is given (modules, whose `Agent` subclasses are all
offered, or `module:Class`), or, given none, those installed packages publish through the
`vsm.agent_types` entry points; configured from the environment like every service
(`AMQP_URL`, `VSM_NAMESPACE`, the signing keys, `HTTP_PORT` for /health and /metrics,
`S1_TYPE_PARTITIONS`). It registers its types with operations, then runs the agents the
registry places on it, under the system's governance (operations' `create_app` with
`offered`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from vsm.agent import Agent, AgentDefinitionError, definition, discover
from vsm.kit.runtime import serve
from vsm.operations.app import create_app
from vsm.operations.settings import Settings

__all__ = ["load_types", "main"]

USAGE_ERROR = 2
HOST_PORT = 8010
"""A host's /health and /metrics port unless `HTTP_PORT` says otherwise (operations' default,
8001, is taken where the services run on one machine)."""


def _classes_in(module: Any) -> list[type[Agent[Any]]]:
    """The agent types a module defines, or a package's modules (not those it imports from
    elsewhere)."""
    inside = (module.__name__, f"{module.__name__}.")
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Agent)
        and value is not Agent
        and (value.__module__ == inside[0] or value.__module__.startswith(inside[1]))
        and "name" in vars(value)
    ]


def load_types(targets: Sequence[str]) -> list[type[Agent[Any]]]:
    """The agent types named by `targets` (`module` or `module:Class`), each checked; with no
    target, those of the `vsm.agent_types` entry points (a broken one is reported, skipped)."""
    if not targets:
        return [found.agent_class for found in discover().types]
    found: dict[str, type[Agent[Any]]] = {}
    for target in targets:
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        classes = [getattr(module, attribute)] if attribute else _classes_in(module)
        if not classes:
            raise AgentDefinitionError(f"{target}: no agent type (vsm.agent.Agent subclass) in it")
        for agent_class in classes:
            read = definition(agent_class)
            if found.get(read.name, agent_class) is not agent_class:
                raise AgentDefinitionError(f"{target}: two agent types are named {read.name!r}")
            found[read.name] = agent_class
    return list(found.values())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="vsm-agent",
        description="Run an agent host: the SDK agent types given, under a vsm system's "
        "governance (settings from the environment, as every vsm service).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="offer agent types and run the agents placed here")
    run.add_argument(
        "targets",
        nargs="*",
        metavar="MODULE[:CLASS]",
        help="modules whose agent types to offer (default: the vsm.agent_types entry points)",
    )
    arguments = parser.parse_args(argv)
    if os.getcwd() not in sys.path:  # a module beside the caller, as `python -m` would find it
        sys.path.insert(0, os.getcwd())
    try:
        offered = load_types(arguments.targets)
    except (ImportError, AttributeError, AgentDefinitionError) as error:
        print(f"vsm-agent: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None
    if not offered:
        print("vsm-agent: no agent type to offer", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
    settings = Settings()
    if "HTTP_PORT" not in os.environ:
        settings = settings.model_copy(update={"http_port": HOST_PORT})
    serve(create_app(settings, offered), settings)


if __name__ == "__main__":
    main()
