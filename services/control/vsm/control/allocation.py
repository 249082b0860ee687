"""`vsm_allocate_resources`: set one agent's allocation, resolving conflicts by priority.

The request names the whole allocation the agent wants. A decrease is granted as asked.
An increase comes first from the free budget; when that is short, from agents of LOWER
priority, lowest first (then the richest), each down to no less than its fair share (the
budget divided by the number of agents, at least 1 slot), so fairness bounds preemption.
What could be found is granted (`partial` when less than asked). Agents S2 damps are
neither granted nor preempted while their cool-down lasts.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from datetime import datetime

from vsm.contract.control import RESOURCE_KINDS, AllocationGrant, AllocationRequest, Preemption
from vsm.contract.errors import Refused
from vsm.control.changes import Change
from vsm.control.ledger import Account, Ledger, SystemBudget
from vsm.control.resources import Amounts, amounts, as_resources, beyond, describe

Taken = list[tuple[Account, Amounts]]


def fair_share(system: SystemBudget) -> Amounts:
    agents = max(1, len(system.accounts))
    share = {kind: amount // agents for kind, amount in amounts(system.budget).items()}
    share["concurrency_slots"] = max(1, share["concurrency_slots"])
    return share


def reclaim(
    system: SystemBudget, requester: Account, priority: int, short: Amounts, damped: Container[str]
) -> Taken:
    """Take `short` from lower-priority agents, each down to its fair share at most."""
    fair = fair_share(system)
    excess = {
        a.agent_id: {k: max(0, v - fair[k]) for k, v in amounts(a.resources).items()}
        for a in system.accounts.values()
    }
    victims = sorted(
        (
            a
            for a in system.accounts.values()
            if a.priority < priority and a is not requester and a.agent_id not in damped
        ),
        key=lambda a: (a.priority, -excess[a.agent_id]["concurrency_slots"], a.agent_id),
    )
    remaining, taken = dict(short), []
    for victim in victims:
        take = {k: min(excess[victim.agent_id][k], remaining[k]) for k in RESOURCE_KINDS}
        if any(take.values()):
            taken.append((victim, take))
            remaining = {k: remaining[k] - take[k] for k in RESOURCE_KINDS}
        if not any(remaining.values()):
            break
    return taken


def allocate(
    ledger: Ledger,
    request: AllocationRequest,
    damped: Mapping[str, datetime],
    cause: object = None,
) -> tuple[AllocationGrant, list[Change]]:
    """The grant and the changes it made; `damped` maps agents to the end of their cool-down."""
    account = ledger.account(request.agent_id)
    if account is None:
        unknown = request.agent_id
        raise Refused("unknown_agent", f"S3 knows no agent {unknown!r}", {"agent_id": unknown})
    system = ledger.systems[account.vsm_id]
    wanted = amounts(request.resources)
    if over := beyond(wanted, amounts(system.budget)):
        raise Refused(
            "over_budget",
            f"{describe(request.resources)} exceeds the whole budget of {account.vsm_id} "
            f"({describe(system.budget)}) in {', '.join(over)}",
            {"requested": request.resources.model_dump(), "budget": system.budget.model_dump()},
        )
    if (until := damped.get(request.agent_id)) is not None:
        raise Refused(
            "damped",
            f"S2 damps {request.agent_id}: no allocation change until {until.isoformat()}",
            {"until": until.isoformat()},
        )
    if account.slot_cap is not None:
        wanted["concurrency_slots"] = min(wanted["concurrency_slots"], account.slot_cap)
    held, free = amounts(account.resources), system.free()
    need = {k: max(0, wanted[k] - held[k]) for k in RESOURCE_KINDS}
    short = {k: max(0, need[k] - free[k]) for k in RESOURCE_KINDS}
    taken = reclaim(system, account, request.priority, short, damped) if any(short.values()) else []
    found = {k: min(need[k], free[k]) + sum(t[k] for _, t in taken) for k in RESOURCE_KINDS}
    granted = {k: wanted[k] if wanted[k] <= held[k] else held[k] + found[k] for k in held}
    changes = [_preempt(victim, t, request, cause) for victim, t in taken]
    outcome = "granted" if not beyond(amounts(request.resources), granted) else "partial"
    reason = _reason(request, account, granted, outcome, taken)
    before = account.resources
    account.resources = as_resources(granted)
    # Under a throttle's cap the wish is remembered, for when the throttle lifts.
    capped = account.slot_cap is not None
    asked = request.resources.concurrency_slots
    account.base_slots = asked if capped else granted["concurrency_slots"]
    account.priority, account.reason = request.priority, reason
    if account.resources != before:
        changes.insert(0, Change.of(account, "request", reason, cause=cause))
    grant = AllocationGrant(
        agent_id=account.agent_id,
        requested=request.resources,
        granted=account.resources,
        outcome=outcome,
        preempted=[Preemption(agent_id=v.agent_id, released=as_resources(t)) for v, t in taken],
        reason=reason,
    )
    return grant, changes


def _preempt(victim: Account, take: Amounts, request: AllocationRequest, cause: object) -> Change:
    left = {k: v - take[k] for k, v in amounts(victim.resources).items()}
    victim.resources = as_resources(left)
    victim.base_slots = min(victim.base_slots, left["concurrency_slots"])
    victim.reason = (
        f"preempted: {describe(take)} moved to {request.agent_id} "
        f"(priority {request.priority} over {victim.priority})"
    )
    return Change.of(victim, "preempted", victim.reason, cause=cause)


def _reason(
    request: AllocationRequest, account: Account, granted: Amounts, outcome: str, taken: Taken
) -> str:
    text = f"{request.reason}: {account.agent_id} holds {describe(granted)}"
    if outcome == "partial":
        text += f" of the {describe(request.resources)} asked"
        if account.slot_cap is not None:
            text += f" (a throttle caps it at {account.slot_cap} slots)"
    if taken:
        text += f", taken in part from {', '.join(v.agent_id for v, _ in taken)}"
    return text
