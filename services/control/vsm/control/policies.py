"""What S5's policies mean for each agent: the allocation S3 should give it now.

`throttle`: each agent gets the most specific matching limit (its id or an origin naming
it, then its type, then `*`): the limit's rate, and at most `max_concurrency` slots; an
agent whose limit is gone is restored (no rate limit, its base slots again, as far as
the free budget allows).
`resource_allocation`: an agent named by id, or by type (the type's share split among its
agents), gets that share of the budget's slots and tokens, at least 1 slot; others keep
what they hold. Each function returns the desired accounts; applying them is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vsm.contract.policy import ResourceAllocationPolicy, ThrottleLimit, ThrottlePolicy
from vsm.control.changes import ChangeKind, with_slots
from vsm.control.ledger import Account, SystemBudget


@dataclass(frozen=True)
class Desired:
    account: Account
    kind: ChangeKind
    reason: str


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def names_agent(target: str, agent_id: str) -> bool:
    """An agent id, or an origin naming it (`operations/<agent_id>`, as S1's pain says)."""
    return target == agent_id or target.endswith(f"/{agent_id}")


def most_specific(limits: list[ThrottleLimit], account: Account) -> ThrottleLimit | None:
    tiers = (
        lambda t: names_agent(t, account.agent_id),
        lambda t: t == account.agent_type,
        lambda t: t == "*",
    )
    for matches in tiers:
        for limit in limits:
            if matches(limit.target):
                return limit
    return None


def _whom(limit: ThrottleLimit, account: Account) -> str:
    if names_agent(limit.target, account.agent_id):
        return "its own limit"
    return "every agent's limit" if limit.target == "*" else f"the limit for {limit.target}"


def throttle(system: SystemBudget, policy: ThrottlePolicy, label: str) -> list[Desired]:
    free_slots = system.free()["concurrency_slots"]
    desired = []
    for account in sorted(system.accounts.values(), key=lambda a: a.agent_id):
        limit = most_specific(policy.limits, account)
        held = account.resources.concurrency_slots
        if limit is not None:
            cap = limit.max_concurrency
            slots = min(account.base_slots, cap) if cap is not None else account.base_slots
            if slots > held:
                slots = held + min(slots - held, free_slots)
            free_slots -= max(0, slots - held)
            reason = f"{label}: {limit.reason}: {account.agent_id} limited to "
            reason += (
                f"{limit.max_rate_per_s:g}/s, {plural(slots, 'slot')} ({_whom(limit, account)})"
            )
            after = replace(
                account,
                resources=with_slots(account.resources, slots),
                max_rate_per_s=limit.max_rate_per_s,
                limited=True,
                slot_cap=cap,
                reason=reason,
            )
            desired.append(Desired(after, "throttle", reason))
        elif account.limited:
            grow = min(max(0, account.base_slots - held), free_slots)
            free_slots -= grow
            back = plural(held + grow, "slot")
            reason = f"{label}: limit lifted: {account.agent_id} back to {back}"
            reason += ", no rate limit"
            after = replace(
                account,
                resources=with_slots(account.resources, held + grow),
                max_rate_per_s=None,
                limited=False,
                slot_cap=None,
                reason=reason,
            )
            desired.append(Desired(after, "restored", reason))
    return desired


def shares(
    system: SystemBudget, policy: ResourceAllocationPolicy, label: str, vsm_id: str
) -> list[Desired]:
    budget = system.budget
    own = {a.agent_id for a in system.accounts.values() if a.agent_id in policy.shares}
    by_type: dict[str, int] = {}
    for account in system.accounts.values():
        if account.agent_id not in own:
            by_type[account.agent_type] = by_type.get(account.agent_type, 0) + 1
    desired = []
    for account in sorted(system.accounts.values(), key=lambda a: a.agent_id):
        if account.agent_id in own:
            share, split = policy.shares[account.agent_id], 1
        elif account.agent_type in policy.shares:
            share, split = policy.shares[account.agent_type], by_type[account.agent_type]
        else:
            continue
        base = max(1, int(share * budget.concurrency_slots / split))
        tokens = int(share * budget.llm_tokens_per_min / split)
        slots = base if account.slot_cap is None else min(base, account.slot_cap)
        among = f" split among {split} {account.agent_type} agents" if split > 1 else ""
        reason = f"{label}: a share of {share:.0%} of {vsm_id}'s budget{among}: "
        reason += plural(slots, "slot")
        reason += f", {tokens} tokens/min"
        after = replace(
            account,
            resources=with_slots(account.resources, slots, tokens),
            base_slots=base,
            reason=reason,
        )
        desired.append(Desired(after, "shares", reason))
    return desired
