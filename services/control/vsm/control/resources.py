"""Arithmetic over `Resources`, kind by kind: what budgets, allocations and carves are made of.

Sums may pass the model's bounds (many agents together), so the working form is a plain dict
of kind -> amount, turned back into `Resources` only when it is a real amount again.
"""

from __future__ import annotations

from collections.abc import Iterable

from vsm.contract.control import RESOURCE_KINDS, Resources

Amounts = dict[str, int]
ZERO = Resources()


def amounts(resources: Resources) -> Amounts:
    return {kind: int(getattr(resources, kind)) for kind in RESOURCE_KINDS}


def total(items: Iterable[Resources]) -> Amounts:
    summed = dict.fromkeys(RESOURCE_KINDS, 0)
    for item in items:
        for kind, amount in amounts(item).items():
            summed[kind] += amount
    return summed


def minus(a: Amounts, b: Amounts) -> Amounts:
    """`a - b`, never below zero (an over-committed budget has nothing free, not less)."""
    return {kind: max(0, a[kind] - b[kind]) for kind in RESOURCE_KINDS}


def as_resources(a: Amounts) -> Resources:
    """Back to the model, each amount held within the model's bounds."""
    limits = {name: field.metadata for name, field in Resources.model_fields.items()}
    bounded = {}
    for kind, amount in a.items():
        ceiling = next((m.le for m in limits[kind] if hasattr(m, "le")), amount)
        bounded[kind] = min(max(0, amount), ceiling)
    return Resources(**bounded)


def beyond(wanted: Amounts, available: Amounts) -> list[str]:
    """The kinds where `wanted` is more than `available` (empty when it fits)."""
    return [kind for kind in RESOURCE_KINDS if wanted[kind] > available[kind]]


def headroom(budget: Amounts, free: Amounts) -> float:
    """The unallocated share of the budget: the scarcest kind that has a budget at all."""
    shares = [free[kind] / budget[kind] for kind in RESOURCE_KINDS if budget[kind] > 0]
    return round(min(shares), 4) if shares else 0.0


def describe(a: Amounts | Resources) -> str:
    """`4 slots, 1000 tokens/min, 128 MB` for people (kinds at zero left out)."""
    values = amounts(a) if isinstance(a, Resources) else a
    units = {"concurrency_slots": "slots", "llm_tokens_per_min": "tokens/min", "memory_mb": "MB"}
    parts = [f"{values[kind]} {units[kind]}" for kind in RESOURCE_KINDS if values[kind]]
    return ", ".join(parts) or "nothing"
