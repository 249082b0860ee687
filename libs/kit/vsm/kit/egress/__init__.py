"""Outbound HTTP only where the operator allows: the policy as plain functions over plain data
(`urls`, `addresses`, `policy`) and an httpx client that enforces it at connect time
(`client`). Agent hosts use it for every call an agent makes on a caller's behalf."""

from vsm.kit.egress.addresses import refusal
from vsm.kit.egress.client import Fetched, egress_client, fetch
from vsm.kit.egress.policy import EgressPolicy
from vsm.kit.egress.urls import REASONS, Blocked, Destination, Reason, destination

__all__ = [
    "REASONS",
    "Blocked",
    "Destination",
    "EgressPolicy",
    "Fetched",
    "Reason",
    "destination",
    "egress_client",
    "fetch",
    "refusal",
]
