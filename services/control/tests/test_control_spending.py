"""S3's LLM spend, as plain functions: the day's spend per agent and system, agents' shares of
a system's daily cap, 80% crossed once per crossing, busy agents fed from idle ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from vsm.contract.control import Resources
from vsm.contract.llm import LlmUsage
from vsm.contract.operations import AgentInfo
from vsm.contract.performance import UnitPerformance
from vsm.control import budgets, spending
from vsm.control.budgets import Refused
from vsm.control.ledger import Ledger
from vsm.control.system3 import System3

DAY = date(2026, 12, 7)
SLOTS = Resources(concurrency_slots=64, llm_tokens_per_min=1000, memory_mb=8192)


def agent(agent_id: str, vsm_id: str = "root") -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id,
        agent_type="llm_worker",
        vsm_id=vsm_id,
        state="running",
        capabilities=["chat"],
        allocation=1,
        max_allocation=4,
        spawned_at=datetime(2026, 12, 7, tzinfo=UTC),
    )


def usage(agent_id: str, usd: float, *, refused: bool = False) -> LlmUsage:
    return LlmUsage(
        agent_id=agent_id,
        agent_type="llm_worker",
        model="claude-haiku-4-5",
        input_tokens=0 if refused else 1000,
        output_tokens=0 if refused else 100,
        cost_usd=usd,
        duration_s=0.1,
        refused=refused,
    )


def system3(usd_per_day: float | None = 1.0, *agents: str) -> System3:
    s3 = System3(Ledger(SLOTS))
    s3.today(DAY)
    s3.set_budget("root", SLOTS.model_copy(update={"llm_usd_per_day": usd_per_day}))
    for agent_id in agents:
        s3.admit(agent(agent_id))
    return s3


def share(s3: System3, agent_id: str) -> float | None:
    account = s3.ledger.account(agent_id)
    assert account is not None
    return account.usd_share


def test_without_a_usd_budget_agents_hold_no_share_and_spend_is_still_counted() -> None:
    s3 = system3(None, "a")

    crossed, changes = s3.use(usage("a", 0.5), "root")

    assert share(s3, "a") is None
    assert (crossed, changes) == ([], [])
    assert s3.spend.agents == {"a": 0.5}


def test_each_agent_admitted_gets_half_of_what_is_unshared_and_is_told() -> None:
    s3 = system3(1.0)

    first = s3.admit(agent("a"))
    second = s3.admit(agent("b"))

    assert (share(s3, "a"), share(s3, "b")) == (0.5, 0.25)
    assert first[0].message().resources.llm_usd_per_day == 0.5
    assert first[0].kind == "budget"
    assert second[0].message().resources.llm_usd_per_day == 0.25
    assert s3.admit(agent("a")) == []  # known: nothing new


def test_setting_the_budget_spreads_half_of_what_is_left_evenly_over_the_day_spent() -> None:
    s3 = system3(None, "a", "b")
    s3.use(usage("a", 0.2), "root")

    changes = s3.set_budget("root", SLOTS.model_copy(update={"llm_usd_per_day": 1.2}))

    assert share(s3, "a") == pytest.approx(0.45)  # its 0.2 spent, plus (1.2 - 0.2) / 2 / 2
    assert share(s3, "b") == pytest.approx(0.25)
    assert {c.agent_id for c in changes} == {"a", "b"}
    assert sum(share(s3, a) or 0 for a in "ab") <= 1.2


def test_spend_is_per_agent_and_per_system_and_services_count_to_their_system() -> None:
    s3 = system3(1.0, "a", "b")

    s3.use(usage("a", 0.1), "root")
    s3.use(usage("b", 0.05), "root")
    s3.use(usage("queen-1", 0.02), "root")  # S5's synthesis for root
    s3.use(usage("x", 0.3), "root/never-heard-of")  # kept nowhere

    system = s3.ledger.systems["root"]
    assert spending.system_spent(s3.spend, system, "root") == pytest.approx(0.17)
    assert "root/never-heard-of" not in s3.ledger.systems
    s3.close("a")  # what a gone agent spent stays its system's
    assert spending.system_spent(s3.spend, system, "root") == pytest.approx(0.17)


def test_crossing_80_percent_is_said_once_not_per_call_and_again_after_a_new_budget() -> None:
    s3 = system3(10.0, "a")  # a holds 5
    s3.ledger.systems["root"].accounts["a"].usd_share = 1.0  # a holds exactly 1 USD

    below, _ = s3.use(usage("a", 0.79), "root")
    crossed, _ = s3.use(usage("a", 0.02), "root")
    again, _ = s3.use(usage("a", 0.01), "root")
    s3.ledger.systems["root"].accounts["a"].usd_share = 2.0  # S3 enlarged it
    s3.use(usage("a", 0.01), "root")
    after_shift, _ = s3.use(usage("a", 0.8), "root")  # past 80% of 2 again: S3 answered already
    s3.set_budget("root", SLOTS.model_copy(update={"llm_usd_per_day": 4.0}))
    new_budget, _ = s3.use(usage("a", 1.0), "root")

    assert below == []
    assert [(c.level, c.agent_id) for c in crossed] == [("warning", "a")]
    assert crossed[0].spent_usd == pytest.approx(0.81)
    assert again == after_shift == []
    assert [(c.level, c.agent_id) for c in new_budget] == [("warning", "a")]


def test_a_system_crossing_its_cap_is_said_for_the_system() -> None:
    s3 = system3(1.0, "a")

    crossed, _ = s3.use(usage("queen-1", 0.85), "root")

    assert [(c.level, c.agent_id, c.vsm_id) for c in crossed] == [("warning", None, "root")]


def test_a_busy_agent_gets_what_is_unshared_and_half_of_each_idle_agents_unspent_share() -> None:
    s3 = system3(1.0, "busy", "idle")  # busy 0.5, idle 0.25, 0.25 unshared
    for _ in range(39):
        assert s3.use(usage("busy", 0.01), "root") == ([], [])

    crossed, changes = s3.use(usage("busy", 0.01), "root")  # 0.4: 80% of its 0.5

    assert [c.level for c in crossed] == ["warning"]
    assert share(s3, "idle") == pytest.approx(0.125)
    assert share(s3, "busy") == pytest.approx(0.5 + 0.25 + 0.125)
    assert {c.agent_id for c in changes} == {"busy", "idle"}
    assert all(c.kind == "budget" for c in changes)
    assert sum(share(s3, a) or 0 for a in ("busy", "idle")) <= 1.0


def test_a_refused_call_is_exhaustion_once_and_the_system_too_when_nothing_is_left() -> None:
    s3 = system3(1.0, "a")
    s3.ledger.systems["root"].accounts["a"].usd_share = 1.0  # everything shared already
    s3.use(usage("a", 0.99), "root")

    crossed, changes = s3.use(usage("a", 0.0, refused=True), "root")
    again, _ = s3.use(usage("a", 0.0, refused=True), "root")

    assert [(c.level, c.agent_id) for c in crossed] == [("exhausted", "a"), ("exhausted", None)]
    assert changes == []
    assert again == []


def test_a_call_refused_by_the_agents_own_cap_in_a_system_without_budget_says_nothing() -> None:
    s3 = system3(None, "a")
    s3.use(usage("a", 0.5), "root")

    assert s3.use(usage("a", 0.0, refused=True), "root") == ([], [])


def test_an_agents_report_brings_back_the_days_spend_after_a_restart() -> None:
    s3 = system3(1.0, "a")  # a fresh S3: it counted nothing of today
    report = UnitPerformance(
        agent_id="a",
        agent_type="llm_worker",
        window_s=5,
        actuality=0,
        capability=0,
        potentiality=0,
        llm_spent_today_usd=0.3,
    )

    s3.record_performance(report)
    s3.record_performance(report.model_copy(update={"llm_spent_today_usd": 0.1}))

    assert s3.spend.agents["a"] == 0.3  # never lowered by a report


def test_a_new_utc_day_starts_from_nothing() -> None:
    s3 = system3(1.0, "a")
    s3.use(usage("a", 0.9), "root")
    tomorrow = s3.spend.day + timedelta(days=1)

    assert s3.today(tomorrow).agents == {}


def test_a_child_carved_from_a_bounded_parent_must_name_what_fits() -> None:
    s3 = system3(1.0)  # nothing shared: 1 USD free
    with pytest.raises(Refused) as unbounded:
        budgets.carve(
            s3.ledger, "root", "root/a", SLOTS.model_copy(update={"concurrency_slots": 1})
        )
    assert unbounded.value.code == "over_budget"
    assert "llm_usd_per_day" in unbounded.value.details["kinds"]
    child = Resources(concurrency_slots=1, llm_usd_per_day=0.4)
    budgets.carve(s3.ledger, "root", "root/a", child)
    assert spending.own_cap(s3.ledger.systems["root"]) == pytest.approx(0.6)
    with pytest.raises(Refused):
        budgets.carve(
            s3.ledger, "root", "root/b", child.model_copy(update={"llm_usd_per_day": 0.7})
        )


def test_a_negative_or_absurd_usd_budget_is_refused_naming_the_field() -> None:
    for bad in (-1, 2_000_000):
        with pytest.raises(ValueError, match="llm_usd_per_day"):
            Resources(llm_usd_per_day=bad)
