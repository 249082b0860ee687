"""Allocation requests as plain data: grants, preemption by priority with fairness, refusals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from vsm.contract.control import AllocationRequest, Resources
from vsm.contract.operations import AgentInfo
from vsm.control.allocation import allocate
from vsm.control.budgets import Refused
from vsm.control.ledger import Ledger

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
BUDGET = Resources(concurrency_slots=10, llm_tokens_per_min=1000, memory_mb=1024)


def ledger_with(*agents: tuple[str, int, int]) -> Ledger:
    """Agents as (id, slots, priority), no memory booked (so only slots matter)."""
    ledger = Ledger(BUDGET, agent_memory_mb=0)
    for agent_id, slots, priority in agents:
        info = AgentInfo(
            agent_id=agent_id,
            agent_type="worker",
            allocation=slots,
            max_allocation=64,
            spawned_at=datetime.now(UTC),
        )
        account = ledger.admit(info)
        assert account is not None
        account.priority = priority
    return ledger


def ask(agent_id: str, slots: int, priority: int = 4, **more: int) -> AllocationRequest:
    return AllocationRequest(
        agent_id=agent_id,
        resources=Resources(concurrency_slots=slots, **more),
        priority=priority,
    )


def slots(ledger: Ledger, agent_id: str) -> int:
    account = ledger.account(agent_id)
    assert account is not None
    return account.resources.concurrency_slots


def test_a_request_within_the_free_budget_is_granted_in_full() -> None:
    ledger = ledger_with(("a", 2, 4), ("b", 2, 4))
    grant, changes = allocate(ledger, ask("a", 6, llm_tokens_per_min=500), {})
    assert grant.outcome == "granted"
    assert grant.granted == Resources(concurrency_slots=6, llm_tokens_per_min=500)
    assert grant.preempted == []
    assert [(c.agent_id, c.kind) for c in changes] == [("a", "request")]
    assert changes[0].resources.concurrency_slots == 6


def test_a_short_budget_is_made_up_from_lower_priority_agents_down_to_their_fair_share() -> None:
    # budget 10, three agents: fair share 3 slots each; free is 1
    ledger = ledger_with(("high", 2, 8), ("low", 4, 1), ("mid", 3, 3))
    grant, changes = allocate(ledger, ask("high", 9, priority=8), {})

    assert grant.outcome == "partial"
    assert grant.granted.concurrency_slots == 4  # 2 held + 1 free + 1 from low
    assert [(p.agent_id, p.released.concurrency_slots) for p in grant.preempted] == [("low", 1)]
    assert slots(ledger, "low") == 3  # its fair share, no less
    assert slots(ledger, "mid") == 3  # at its fair share: nothing to take
    assert {c.agent_id: c.kind for c in changes} == {"high": "request", "low": "preempted"}
    assert "taken in part from low" in grant.reason


def test_lowest_priority_gives_first_and_only_what_is_needed() -> None:
    ledger = ledger_with(("req", 1, 9), ("p1", 4, 1), ("p2", 5, 2))
    grant, _ = allocate(ledger, ask("req", 2, priority=9), {})
    assert [(p.agent_id, p.released.concurrency_slots) for p in grant.preempted] == [("p1", 1)]
    grant, _ = allocate(ledger, ask("req", 4, priority=9), {})
    assert grant.outcome == "granted"
    # p1 is at its fair share (3) now, so the rest comes from p2
    assert [(p.agent_id, p.released.concurrency_slots) for p in grant.preempted] == [("p2", 2)]
    assert (slots(ledger, "p1"), slots(ledger, "p2")) == (3, 3)


def test_equal_or_higher_priority_agents_are_never_preempted() -> None:
    ledger = ledger_with(("a", 2, 4), ("b", 8, 4))
    grant, changes = allocate(ledger, ask("a", 6, priority=4), {})
    assert grant.outcome == "partial"
    assert grant.granted.concurrency_slots == 2
    assert grant.preempted == []
    assert changes == []  # nothing actually changed
    assert slots(ledger, "b") == 8


def test_a_decrease_is_granted_as_asked_and_frees_the_budget() -> None:
    ledger = ledger_with(("a", 8, 4))
    grant, _ = allocate(ledger, ask("a", 1), {})
    assert grant.granted.concurrency_slots == 1
    assert ledger.system("root").free()["concurrency_slots"] == 9


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (ask("ghost", 1), "unknown_agent"),
        (ask("a", 11), "over_budget"),
        (ask("a", 1, llm_tokens_per_min=1001), "over_budget"),
        (ask("a", 3), "damped"),
    ],
)
def test_refusals_leave_the_ledger_unchanged(request_: AllocationRequest, code: str) -> None:
    ledger = ledger_with(("a", 2, 4), ("b", 2, 1))
    before = copy.deepcopy(ledger.systems)
    with pytest.raises(Refused) as refused:
        allocate(ledger, request_, {"a": UNTIL})
    assert refused.value.code == code
    if code == "damped":
        assert refused.value.details == {"until": UNTIL.isoformat()}
    assert ledger.systems == before


def test_damped_agents_are_not_preempted() -> None:
    ledger = ledger_with(("req", 1, 9), ("cool", 8, 1))
    grant, _ = allocate(ledger, ask("req", 5, priority=9), {"cool": UNTIL})
    assert grant.preempted == []
    assert grant.granted.concurrency_slots == 2


def test_a_throttle_cap_bounds_the_grant_and_the_wish_is_kept_for_later() -> None:
    ledger = ledger_with(("a", 2, 4))
    account = ledger.account("a")
    assert account is not None
    account.slot_cap, account.limited = 3, True
    grant, _ = allocate(ledger, ask("a", 6), {})
    assert grant.outcome == "partial"
    assert grant.granted.concurrency_slots == 3
    assert "throttle caps it at 3" in grant.reason
    assert account.base_slots == 6
