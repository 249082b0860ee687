"""Budgets of viable systems: set one, carve a child's out of its parent's, release it again.

A child's budget is part of its parent's: carving takes it from the parent's free budget
(budget minus what agents hold minus the other children), and setting a carved child's
budget directly is held to the same bound. A refusal raises `Refused` before anything
changes, so a refused request leaves the ledger as it was.
"""

from __future__ import annotations

from vsm.contract.control import Resources
from vsm.contract.errors import Refused
from vsm.control import spending
from vsm.control.ledger import Ledger, SystemBudget, parent_of
from vsm.control.resources import ZERO, amounts, beyond, describe, total


def _over(what: str, wanted: Resources, available: dict[str, int]) -> Refused:
    kinds = beyond(amounts(wanted), available)
    return Refused(
        "over_budget",
        f"{what} ({describe(wanted)}) exceeds what is free ({describe(available)}) in "
        f"{', '.join(kinds)}",
        {"requested": wanted.model_dump(), "free": available, "kinds": kinds},
    )


def _usd_free(system: SystemBudget, except_child: str | None = None) -> float | None:
    """USD per day neither carved by other children nor shared by agents (None: unbounded)."""
    cap = system.budget.llm_usd_per_day
    if cap is None:
        return None
    children = system.children.items()
    carved = sum(r.llm_usd_per_day or 0.0 for c, r in children if c != except_child)
    return max(0.0, cap - carved - spending.shared(system))


def _usd_fits(what: str, wanted: float | None, free: float | None) -> None:
    """A carve's USD per day must fit what its parent has free (a bounded parent's child is
    bounded too)."""
    if free is None or (wanted is not None and wanted <= free + spending.PRECISION):
        return
    asked = "no USD budget (unbounded)" if wanted is None else f"{wanted:g} USD/day"
    raise Refused(
        "over_budget",
        f"{what} asks {asked}, but only {free:g} USD/day is free (not carved or shared)",
        {"requested_usd_per_day": wanted, "free_usd_per_day": free, "kinds": ["llm_usd_per_day"]},
    )


def check_minimums(budget: Resources, minimums: Resources) -> None:
    """`invalid_budget` naming the first field below its minimum (`BUDGET_MIN_*`): the one
    place budgets' floors are checked, for a budget set and a budget carved."""
    for kind, least in amounts(minimums).items():
        given = getattr(budget, kind)
        if given < least:
            raise Refused(
                "invalid_budget",
                f"budget.{kind}: {given} is below the minimum {least}",
                {"field": f"budget.{kind}", "minimum": least, "given": given},
            )


def set_budget(ledger: Ledger, vsm_id: str, budget: Resources) -> None:
    check_minimums(budget, ledger.minimums)
    system = ledger.system(vsm_id)
    carved = total(system.children.values())
    carved_usd = sum(child.llm_usd_per_day or 0.0 for child in system.children.values())
    if budget.llm_usd_per_day is not None and carved_usd > budget.llm_usd_per_day:
        raise Refused(
            "over_budget",
            f"the budget of {budget.llm_usd_per_day:g} USD/day is less than its children "
            f"carved ({carved_usd:g} USD/day); release children first",
            {"requested": budget.model_dump(), "children_usd_per_day": carved_usd},
        )
    if beyond(carved, amounts(budget)):
        raise Refused(
            "over_budget",
            f"the budget ({describe(budget)}) is less than its children carved "
            f"({describe(carved)}); release children first",
            {"requested": budget.model_dump(), "children": carved},
        )
    parent_id = parent_of(vsm_id)
    parent = ledger.systems.get(parent_id) if parent_id else None
    if parent is not None and vsm_id in parent.children:
        available = parent.free(except_child=vsm_id)
        if beyond(amounts(budget), available):
            raise _over(f"the budget of {vsm_id}", budget, available)
        _usd_fits(f"the budget of {vsm_id}", budget.llm_usd_per_day, _usd_free(parent, vsm_id))
        parent.children[vsm_id] = budget
    system.budget = budget


def carve(ledger: Ledger, parent_id: str, child: str, budget: Resources) -> None:
    if parent_of(child) != parent_id:
        raise Refused(
            "invalid_child",
            f"{child!r} is not a direct child of {parent_id!r}",
            {"parent": parent_id, "child": child},
        )
    check_minimums(budget, ledger.minimums)
    parent = ledger.system(parent_id)
    available = parent.free(except_child=child)
    if beyond(amounts(budget), available):
        raise _over(f"the budget for {child}", budget, available)
    _usd_fits(f"the budget for {child}", budget.llm_usd_per_day, _usd_free(parent, child))
    existing = ledger.systems.get(child)
    if existing is not None and beyond(total(existing.children.values()), amounts(budget)):
        raise Refused(
            "over_budget",
            f"{child}'s own children hold more than {describe(budget)}",
            {"requested": budget.model_dump()},
        )
    parent.children[child] = budget
    ledger.system(child).budget = budget


def release(ledger: Ledger, parent_id: str, child: str) -> Resources:
    """Return a child's budget to its parent; a child that still has agents keeps a zero one."""
    parent = ledger.systems.get(parent_id)
    if parent is None or child not in parent.children:
        raise Refused(
            "child_not_found",
            f"{parent_id!r} has no carved budget for {child!r}",
            {"parent": parent_id, "child": child},
        )
    returned = parent.children.pop(child)
    own = ledger.systems.get(child)
    if own is not None and not own.accounts and not own.children:
        del ledger.systems[child]
    elif own is not None:  # nothing left to spend, and no LLM spend either if it was bounded
        bounded = returned.llm_usd_per_day is not None
        own.budget = ZERO.model_copy(update={"llm_usd_per_day": 0.0}) if bounded else ZERO
    return returned
