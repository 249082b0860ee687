"""What a service's own process never loads, though a package it imports would.

structlog renders exceptions with rich when rich is installed, and imports it (with pygments
and the rest, about 4 MiB) as soon as structlog itself is imported; rich is there because
Litestar's CLI and vsm's CLI use it. A service logs JSON lines and never needs it, so its
entry point (`python -m vsm.<service>`, the `vsm-<service>` script) calls `lean_process()`
before importing anything else: an import of rich then fails, and structlog goes without
it (plain tracebacks). Only that process: the CLI, and the tests that run services in their
own process, keep rich.
"""

from __future__ import annotations

import sys

__all__ = ["NOT_IN_SERVICES", "lean_process"]

NOT_IN_SERVICES = ("rich",)
"""Packages a service's process does not import (their optional users go without them)."""


def lean_process() -> None:
    """From now on, importing one of `NOT_IN_SERVICES` fails in this process (ImportError),
    unless it is loaded already."""
    for name in NOT_IN_SERVICES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
