"""The vsm service kit: what every service shares, so each service is only its own logic.

`Bus`, `Runtime` and `ServiceSettings` are imported on first use, so a module of the kit can
be imported alone (`vsm.kit.lean`, first thing in a service's process) without the rest."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vsm.kit.bus import Bus
    from vsm.kit.runtime import Runtime
    from vsm.kit.settings import ServiceSettings

__all__ = ["Bus", "Runtime", "ServiceSettings"]

_HOMES = {"Bus": "vsm.kit.bus", "Runtime": "vsm.kit.runtime", "ServiceSettings": "vsm.kit.settings"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'vsm.kit' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
