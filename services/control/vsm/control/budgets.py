"""Budgets of viable systems: set one, carve a child's out of its parent's, release it again.

A child's budget is part of its parent's: carving takes it from the parent's free budget
(budget minus what agents hold minus the other children), and setting a carved child's
budget directly is held to the same bound. A refusal raises `Refused` before anything
changes, so a refused request leaves the ledger as it was.
"""

from __future__ import annotations

from typing import Any

from vsm.contract.control import Resources
from vsm.control.ledger import Ledger, parent_of
from vsm.control.resources import ZERO, amounts, beyond, describe, total


class Refused(Exception):
    """A request S3 will not carry out; `code` is the stable ErrorReply code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


def _over(what: str, wanted: Resources, available: dict[str, int]) -> Refused:
    kinds = beyond(amounts(wanted), available)
    return Refused(
        "over_budget",
        f"{what} ({describe(wanted)}) exceeds what is free ({describe(available)}) in "
        f"{', '.join(kinds)}",
        {"requested": wanted.model_dump(), "free": available, "kinds": kinds},
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
    elif own is not None:
        own.budget = ZERO
    return returned
