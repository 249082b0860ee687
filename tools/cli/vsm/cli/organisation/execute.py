"""Carrying out a plan, one REST call per step (two for a replacement), in the plan's order;
agents created one after another in one viable system go in bulk spawns
(`POST /agents:bulk`), and agents removed one after another in bulk terminates
(`POST /agents:bulk-terminate`), `BULK` at a time (one call each from a gateway without
that route).

The first refusal stops the run: the steps before it stay done (in a bulk request, every item
carried out is reported done before the first refused one stops the run), and running
`vsm apply` again plans only what is still missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any

from vsm.cli.errors import Refused
from vsm.cli.gateway import Gateway
from vsm.cli.organisation.steps import Step

BULK = 1000
"""Agents per bulk request: the gateway's default `REST_BULK_SPAWN_MAX` and
`REST_BULK_TERMINATE_MAX`."""

BULK_ROUTES = {"create": "/agents:bulk", "remove": "/agents:bulk-terminate"}
"""The bulk route of each action on agents that goes in bulk."""

REASON_LIMIT = 256
"""The longest reason a termination is logged with."""

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


def in_bulk(step: Step) -> str | None:
    """The action (`create`, `remove`) when `step` is one on an agent that goes in bulk."""
    return step.action if step.kind == "agent" and step.action in BULK_ROUTES else None


def runs(steps: list[Step]) -> Iterator[list[Step]]:
    """The plan in runs: agents created (or removed) one after another in one system, at
    most `BULK` each; any other step alone."""
    for (action, _), run in groupby(steps, lambda s: (in_bulk(s), s.vsm_id)):
        batch = list(run)
        if action is None:
            yield from ([step] for step in batch)
            continue
        for start in range(0, len(batch), BULK):
            yield batch[start : start + BULK]


def bulk(
    gateway: Gateway, steps: list[Step], reason: str, done: Callable[[Step, Any], None]
) -> None:
    """The agents of `steps` in one bulk spawn (or terminate); each one spawned (or
    terminated) is done, then the first refused one (if any) is raised."""
    path = BULK_ROUTES[steps[0].action]
    if steps[0].action == "create":
        answer = gateway.post(path, {"agents": [s.body for s in steps]}, vsm_id=steps[0].vsm_id)
    else:
        body = {"agent_ids": [s.agent_id for s in steps], "reason": reason[:REASON_LIMIT]}
        answer = gateway.post(path, body)
    refusals = []
    for step, item in zip(steps, answer["results"], strict=True):
        if item.get("agent") is not None:
            done(step, item["agent"])
        else:
            refusals.append((step, item))
    if refusals:
        step, item = refusals[0]
        others = f" (and {len(refusals) - 1} more refused)" if len(refusals) > 1 else ""
        line = f"POST {path}: agent {step.name} of {step.vsm_id}: {item['status']} "
        message = f"{line}{item['error']}: {item['message']}{others}"
        raise Refused(message, item["status"], item["error"])


def execute(
    gateway: Gateway, steps: list[Step], reason: str, done: Callable[[Step, Any], None]
) -> None:
    older: set[str] = set()  # actions whose bulk route the gateway lacks: one call per agent
    for run in runs(steps):
        action = in_bulk(run[0])
        if action is not None and action not in older:
            try:
                bulk(gateway, run, reason, done)
                continue
            except Refused as refused:
                if not refused.no_such_route:
                    raise
                older.add(action)
        for step in run:
            done(step, carry_out(gateway, step, reason))
