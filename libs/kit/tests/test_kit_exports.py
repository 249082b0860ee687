"""Every public module of the libraries says what it exports, and exports what it says."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

LIBS = Path(__file__).resolve().parents[2]


def public_modules() -> list[str]:
    found = []
    for library in ("agent", "contract", "kit"):
        root = LIBS / library
        for path in sorted((root / "vsm").rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if not any(part.startswith("_") for part in parts):
                found.append(".".join(parts))
    return found


@pytest.mark.parametrize("name", public_modules())
def test_a_public_module_declares_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)

    exported = getattr(module, "__all__", None)

    assert exported is not None, f"{name} has no __all__"
    assert [n for n in exported if not hasattr(module, n)] == []
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", public_modules())
def test_every_public_class_and_function_a_module_defines_is_exported(name: str) -> None:
    module = importlib.import_module(name)

    defined = [
        n
        for n, value in vars(module).items()
        if n.isidentifier()  # pydantic puts its parametrised generics here too
        and not n.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    ]

    assert sorted(set(defined) - set(module.__all__)) == []
