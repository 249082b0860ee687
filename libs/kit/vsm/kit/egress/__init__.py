"""Outbound HTTP only where the operator allows: the policy as plain functions over plain data
(`urls`, `addresses`, `policy`) and an httpx client that enforces it at connect time
(`client`). Agent hosts use it for every call an agent makes on a caller's behalf.

The client's names are imported on first use (module `__getattr__`), and `OnDemand` makes the
client on its first call: a service with nothing to call out to never imports httpx."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vsm.kit.egress.addresses import refusal
from vsm.kit.egress.on_demand import OnDemand
from vsm.kit.egress.policy import EgressPolicy
from vsm.kit.egress.urls import REASONS, Blocked, Destination, Reason, destination

if TYPE_CHECKING:
    from vsm.kit.egress.client import Fetched, egress_client, fetch

__all__ = [
    "REASONS",
    "Blocked",
    "Destination",
    "EgressPolicy",
    "Fetched",
    "OnDemand",
    "Reason",
    "destination",
    "egress_client",
    "fetch",
    "refusal",
]

CLIENT_NAMES = frozenset({"Fetched", "egress_client", "fetch"})
"""Exported here, defined in `vsm.kit.egress.client` (httpx): imported when first asked for."""


def __getattr__(name: str) -> Any:
    if name in CLIENT_NAMES:
        return getattr(importlib.import_module("vsm.kit.egress.client"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
