"""One shape: the broker is reached through the kit only, and no code leans on the frameworks'
internals (so a FastStream, Litestar or aio-pika upgrade cannot break a service silently).

Scanned with `ast`, every service module (`services/*/vsm/**`) must not import `aio_pika`,
read `.broker` (the bus's FastStream broker), or import a private name (`_x`, or from a module
path with a `_private` part) from faststream, litestar or aio_pika; the kit (`libs/kit/vsm/**`)
must not import such private names either. An exception is named below with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FRAMEWORKS = frozenset({"faststream", "litestar", "aio_pika"})

SERVICE_EXCEPTIONS: dict[str, str] = {}
"""`path:finding` -> why this service module may do it (none today)."""
KIT_EXCEPTIONS: dict[str, str] = {}
"""`path:finding` -> why the kit needs this framework internal (none today)."""


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def findings(tree: ast.AST, *, service: bool) -> Iterator[str]:
    """What breaks the rules in one module: `import aio_pika`, `.broker`, private imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from imported(alias.name, [], service=service)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from imported(node.module, [a.name for a in node.names], service=service)
        elif service and isinstance(node, ast.Attribute) and node.attr == "broker":
            yield "reads .broker"


def imported(module: str, names: list[str], *, service: bool) -> Iterator[str]:
    """What one import breaks: `aio_pika` in a service, a private name of a framework."""
    root = module.split(".", maxsplit=1)[0]
    if service and root == "aio_pika":
        yield f"imports {'from ' if names else ''}{module}"
    elif root in FRAMEWORKS:
        if _private(module):
            yield f"imports private {module}"
        yield from (f"imports private {module}.{name}" for name in names if name.startswith("_"))


def scan(pattern: str, *, service: bool) -> set[str]:
    found: set[str] = set()
    for path in sorted(ROOT.glob(pattern)):
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), relative)
        found |= {f"{relative}:{finding}" for finding in findings(tree, service=service)}
    return found


def unexplained(pattern: str, exceptions: dict[str, str], *, service: bool) -> list[str]:
    return sorted(scan(pattern, service=service) - exceptions.keys())


def test_service_modules_reach_the_broker_through_the_kit_only() -> None:
    found = unexplained("services/*/vsm/**/*.py", SERVICE_EXCEPTIONS, service=True)
    assert not found, (
        f"{found}: reach the broker through the kit (`vsm.kit`: the bus, its declarations, "
        "consumers and log readers), or name the exception in SERVICE_EXCEPTIONS with its reason"
    )


def test_the_kit_imports_no_framework_internals() -> None:
    found = unexplained("libs/kit/vsm/**/*.py", KIT_EXCEPTIONS, service=False)
    assert not found, (
        f"{found}: use the framework's public API or the kit's own code, or name the exception "
        "in KIT_EXCEPTIONS with its reason"
    )


@pytest.mark.parametrize(
    ("source", "service", "expected"),
    [
        ("import aio_pika", True, ["imports aio_pika"]),
        ("from aio_pika.abc import AbstractChannel", True, ["imports from aio_pika.abc"]),
        ("async def f(bus):\n    await bus.broker.connect()", True, ["reads .broker"]),
        (
            "from faststream._internal.constants import EMPTY",
            False,
            ["imports private faststream._internal.constants"],
        ),
        ("from litestar.di import _x", False, ["imports private litestar.di._x"]),
        ("import aio_pika", False, []),
        ("from vsm.kit.bus import Bus", True, []),
    ],
)
def test_the_scan_finds_each_kind_of_breach(
    source: str, service: bool, expected: list[str]
) -> None:
    assert list(findings(ast.parse(source), service=service)) == expected
