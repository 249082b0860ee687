"""Carrying out a plan, one REST call per step (two for a replacement), in the plan's order.

The first refusal stops the run: the steps before it stay done, and running `vsm apply`
again plans only what is still missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vsm.cli.gateway import Gateway
from vsm.cli.organisation.steps import Step

PUT = {"budget": "/system/3/budget", "rules": "/system/4/rules"}
"""Steps that replace a system's whole object, by kind."""


def parent(vsm_id: str) -> str:
    return vsm_id.rsplit("/", 1)[0]


def carry_out(gateway: Gateway, step: Step, reason: str) -> Any:
    """Make one step true in the running system; the gateway's answer."""
    if step.kind == "meta_system":
        if step.action == "create":
            return gateway.post("/meta-systems", step.body, vsm_id=parent(step.vsm_id))
        return gateway.delete("/meta-systems", vsm_id=step.vsm_id)
    if step.kind == "identity":
        policy = {"policy_type": "identity", **step.body}
        return gateway.put("/identity", {"policy": policy, "reason": reason}, vsm_id=step.vsm_id)
    if step.kind in PUT:
        return gateway.put(PUT[step.kind], step.body, vsm_id=step.vsm_id)
    if step.action in ("remove", "replace"):
        gone = gateway.delete(f"/agents/{step.agent_id}")
        if step.action == "remove":
            return gone
    return gateway.post("/agents", step.body, vsm_id=step.vsm_id)


def execute(
    gateway: Gateway, steps: list[Step], reason: str, done: Callable[[Step, Any], None]
) -> None:
    for step in steps:
        done(step, carry_out(gateway, step, reason))
