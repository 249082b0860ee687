"""The ledger and budgets as plain data: agents in and out, set, carve and release, headroom."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from vsm.contract.control import Resources
from vsm.contract.operations import AgentInfo
from vsm.control.budgets import Refused, carve, release, set_budget
from vsm.control.ledger import MAX_GONE, Ledger
from vsm.control.resources import amounts, headroom

BUDGET = Resources(concurrency_slots=10, llm_tokens_per_min=1000, memory_mb=1024)


def agent(agent_id: str, slots: int = 4, vsm_id: str = "root", kind: str = "worker") -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        agent_type=kind,
        vsm_id=vsm_id,
        allocation=slots,
        max_allocation=16,
        spawned_at=datetime.now(UTC),
    )


def test_an_agent_is_admitted_once_with_its_spawn_slots_and_default_memory() -> None:
    ledger = Ledger(BUDGET, agent_memory_mb=128)
    first = ledger.admit(agent("w-1", 4))
    assert first is not None
    first.priority = 7
    again = ledger.admit(agent("w-1", 9))  # a late listing keeps what S3 granted since
    assert again is first
    assert again.resources == Resources(concurrency_slots=4, memory_mb=128)
    assert ledger.system("root").free() == {
        "concurrency_slots": 6,
        "llm_tokens_per_min": 1000,
        "memory_mb": 896,
    }


def test_a_terminated_agent_returns_its_allocation_and_is_not_brought_back() -> None:
    ledger = Ledger(BUDGET)
    ledger.admit(agent("w-1", 4))
    closed = ledger.close("w-1")
    assert closed is not None
    assert ledger.admit(agent("w-1", 4)) is None
    assert ledger.system("root").allocated()["concurrency_slots"] == 0


def test_carving_a_child_takes_it_from_the_parents_free_budget() -> None:
    ledger = Ledger(BUDGET)
    ledger.admit(agent("w-1", 4))
    carve(ledger, "root", "root/logistics", Resources(concurrency_slots=5))
    assert ledger.system("root").children == {"root/logistics": Resources(concurrency_slots=5)}
    assert ledger.system("root/logistics").budget == Resources(concurrency_slots=5)
    assert ledger.system("root").free()["concurrency_slots"] == 1
    # resizing the same child counts its old carve as free again
    carve(ledger, "root", "root/logistics", Resources(concurrency_slots=6))
    assert ledger.system("root").free()["concurrency_slots"] == 0


def test_a_carve_beyond_the_free_budget_is_refused_and_changes_nothing() -> None:
    ledger = Ledger(BUDGET)
    ledger.admit(agent("w-1", 4))
    carve(ledger, "root", "root/a", Resources(concurrency_slots=3))
    before = copy.deepcopy(ledger.systems)
    with pytest.raises(Refused) as refused:
        carve(ledger, "root", "root/b", Resources(concurrency_slots=4))
    assert refused.value.code == "over_budget"
    assert refused.value.details["kinds"] == ["concurrency_slots"]
    assert ledger.systems == before


def test_only_a_direct_child_can_be_carved() -> None:
    ledger = Ledger(BUDGET)
    with pytest.raises(Refused) as refused:
        carve(ledger, "root", "root/a/b", Resources(concurrency_slots=1))
    assert refused.value.code == "invalid_child"


def test_releasing_returns_the_budget_and_an_unknown_child_is_refused() -> None:
    ledger = Ledger(BUDGET)
    carve(ledger, "root", "root/a", Resources(concurrency_slots=3))
    assert release(ledger, "root", "root/a") == Resources(concurrency_slots=3)
    assert ledger.system("root").children == {}
    assert "root/a" not in ledger.systems
    with pytest.raises(Refused) as refused:
        release(ledger, "root", "root/a")
    assert refused.value.code == "child_not_found"


def test_a_budget_below_what_children_carved_is_refused() -> None:
    ledger = Ledger(BUDGET)
    carve(ledger, "root", "root/a", Resources(concurrency_slots=6))
    with pytest.raises(Refused) as refused:
        set_budget(ledger, "root", Resources(concurrency_slots=5))
    assert refused.value.code == "over_budget"
    assert ledger.system("root").budget == BUDGET


def test_a_carved_childs_budget_stays_within_its_parents() -> None:
    ledger = Ledger(BUDGET)
    carve(ledger, "root", "root/a", Resources(concurrency_slots=6))
    set_budget(ledger, "root/a", Resources(concurrency_slots=8))
    assert ledger.system("root").children["root/a"].concurrency_slots == 8
    with pytest.raises(Refused):
        set_budget(ledger, "root/a", Resources(concurrency_slots=11))
    assert ledger.system("root/a").budget.concurrency_slots == 8


def test_headroom_is_the_scarcest_budgeted_kind() -> None:
    assert (
        headroom(
            amounts(BUDGET), {"concurrency_slots": 5, "llm_tokens_per_min": 100, "memory_mb": 1024}
        )
        == 0.1
    )
    assert (
        headroom(amounts(Resources(concurrency_slots=4)), amounts(Resources(concurrency_slots=1)))
        == 0.25
    )
    assert headroom(amounts(Resources()), amounts(Resources())) == 0.0


def test_s3_remembers_only_the_latest_terminations() -> None:
    ledger = Ledger(BUDGET, agent_memory_mb=128)
    for index in range(MAX_GONE + 500):
        ledger.close(f"made-up-{index}")
    assert len(ledger.gone) == MAX_GONE
    assert ledger.admit(agent("made-up-0")) is not None  # forgotten: long ago
    assert ledger.admit(agent(f"made-up-{MAX_GONE + 499}")) is None  # recent: stays gone


def test_a_budget_below_a_minimum_is_refused_naming_the_field_set_or_carved() -> None:
    ledger = Ledger(BUDGET, minimums=Resources(concurrency_slots=1, memory_mb=64))
    with pytest.raises(Refused) as refused:
        set_budget(ledger, "root", Resources(memory_mb=128))
    assert (refused.value.code, refused.value.details["field"]) == (
        "invalid_budget",
        "budget.concurrency_slots",
    )
    with pytest.raises(Refused) as carved:
        carve(ledger, "root", "root/c", Resources(concurrency_slots=1, memory_mb=10))
    assert carved.value.details["field"] == "budget.memory_mb"
    assert "root/c" not in ledger.systems
    carve(ledger, "root", "root/c", Resources(concurrency_slots=1, memory_mb=64))


def test_a_rehomed_agent_takes_its_account_to_the_child_and_back() -> None:
    ledger = Ledger(BUDGET)
    ledger.admit(agent("w-1", 4))
    carve(ledger, "root", "root/worker", Resources(concurrency_slots=5))
    assert ledger.move("w-1", "root/nowhere") is None  # S3 keeps no such system
    moved = ledger.move("w-1", "root/worker")
    assert moved is not None
    assert moved.vsm_id == "root/worker"
    assert set(ledger.system("root/worker").accounts) == {"w-1"}
    assert ledger.system("root").accounts == {}
    release(ledger, "root", "root/worker")  # released before the agent came back
    assert ledger.move("w-1", "root") is not None
    assert set(ledger.system("root").accounts) == {"w-1"}
    assert "root/worker" not in ledger.systems  # the released child went with its last agent
