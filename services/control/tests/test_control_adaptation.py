"""Adaptation policies as deeds, as plain data: the plan of each kind, the hour's quotas,
capacity and isolation on the ledger, and the circuit breaker that readmits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from vsm.contract.control import Resources
from vsm.contract.operations import AgentInfo
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import AdaptationPolicy
from vsm.control import adjustments
from vsm.control.adaptation import Fleet, meta_system_request, plan
from vsm.control.adjustments import Breaker
from vsm.control.ledger import Ledger
from vsm.control.quotas import AdaptationQuota

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FREE = Resources(concurrency_slots=40, llm_tokens_per_min=4000, memory_mb=800)


def policy(mode: str = "expansive", **fields: Any) -> AdaptationPolicy:
    return AdaptationPolicy(
        policy_type="adaptation", mode=mode, actions=["act"], rationale="why", **fields
    )


def test_expansive_spawns_up_to_the_number_asked_for() -> None:
    steps, refusals = plan(policy(scale={"worker": 4}), Fleet({"worker": ["w1"]}), "root", FREE)
    assert [(s.action, s.target, s.count, s.owner) for s in steps] == [("spawn", "worker", 3, "S1")]
    assert refusals == []


def test_expansive_retires_only_what_adaptation_spawned_newest_first() -> None:
    fleet = Fleet({"worker": ["w1", "a1", "a2", "a3"]}, frozenset({"a1", "a2", "a3"}))
    steps, refusals = plan(policy(scale={"worker": 2}), fleet, "root", FREE)
    assert [(s.action, s.agent_ids) for s in steps] == [("retire", ("a3", "a2"))]
    assert refusals == []

    steps, refusals = plan(policy(scale={"worker": 0}), fleet, "root", FREE)
    assert [(s.action, s.agent_ids) for s in steps] == [("retire", ("a3", "a2", "a1"))]
    assert [(r.action, r.reason) for r in refusals] == [("retire", "not_adapted")]


def test_a_type_at_its_number_needs_nothing_and_words_alone_plan_nothing() -> None:
    assert plan(policy(scale={"worker": 1}), Fleet({"worker": ["w1"]}), "root", FREE) == ([], [])
    assert plan(policy("incremental"), Fleet({"worker": ["w1"]}), "root", FREE) == ([], [])


def test_defensive_and_incremental_steps_have_their_owners() -> None:
    steps, _ = plan(
        policy("defensive", isolate=["w1"], shed=["batch"], capacity={"worker": 0.5}),
        Fleet({}),
        "root",
        FREE,
    )
    assert [(s.action, s.target, s.owner) for s in steps] == [
        ("reallocate", "worker", "S3"),
        ("isolate", "w1", "S2"),
        ("shed", "batch", "S2"),
    ]


def test_transformational_proposes_a_child_for_what_overloads() -> None:
    overloading = ["s1.performance.llm_worker", "s1.result.summarise.ok"]
    steps, _ = plan(policy("transformational", overloading=overloading), Fleet({}), "root", FREE)
    (step,) = steps
    request = meta_system_request("root", overloading, FREE)
    assert (step.action, step.owner, step.target) == ("meta_system", "S5", request.name)
    assert request.name == "s1-performance-llm-worker"
    assert "s1.performance.llm_worker" in request.purpose
    assert request.budget.concurrency_slots == 10
    assert step.request == request.model_dump(mode="json")


def test_absurd_scale_or_capacity_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="scale"):
        policy(scale={"worker": 5000})
    with pytest.raises(ValidationError, match="capacity"):
        policy("incremental", capacity={"worker": 0.0})


def test_quota_grants_what_is_left_of_the_hour_and_frees_it_after() -> None:
    quota = AdaptationQuota({"spawns": 3, "retirements": 1, "policies": 2})
    assert quota.take("root", "spawns", 2, now=0.0) == 2
    assert quota.take("root", "spawns", 2, now=10.0) == 1
    assert quota.take("root", "spawns", 1, now=20.0) == 0
    assert quota.take("root/child", "spawns", 1, now=20.0) == 1  # per viable system
    assert quota.take("root", "spawns", 5, now=3600.0) == 2  # the first two left the hour
    quota.give_back("root", "spawns", 1)
    assert quota.left("root", "spawns", now=3600.0) == 1


def ledger(*agents: tuple[str, str, int]) -> Ledger:
    books = Ledger(Resources(concurrency_slots=10, llm_tokens_per_min=1000, memory_mb=0))
    for agent_id, kind, slots in agents:
        books.admit(
            AgentInfo(
                agent_id=agent_id,
                agent_type=kind,
                allocation=slots,
                max_allocation=64,
                spawned_at=T0,
            )
        )
    return books


def test_capacity_grows_within_the_free_slots_and_shrinks_to_one_at_least() -> None:
    books = ledger(("w1", "worker", 3), ("w2", "worker", 3), ("s1", "sensor", 2))
    system = books.systems["root"]
    grown = adjustments.capacity(system, "worker", 2.0, "adaptation v1")
    assert [(d.account.agent_id, d.account.resources.concurrency_slots) for d in grown] == [
        ("w1", 5),  # 6 wanted, 2 free
        ("w2", 3),
    ]
    shrunk = adjustments.capacity(system, "s1", 0.1, "adaptation v2")
    assert [d.account.resources.concurrency_slots for d in shrunk] == [1]
    assert adjustments.capacity(system, "nobody", 2.0, "v3") == []


def test_isolation_takes_every_slot_and_readmission_gives_them_back() -> None:
    books = ledger(("w1", "worker", 3))
    account = books.systems["root"].accounts["w1"]
    assert adjustments.isolate(account, "v1").account.resources.concurrency_slots == 0
    assert adjustments.readmit(account, 1, "v1").account.resources.concurrency_slots == 1
    assert "healthy again" in adjustments.readmit(account, 3, "v1").reason


def report(failed: int, succeeded: int) -> UnitPerformance:
    return UnitPerformance(
        agent_id="w1",
        agent_type="worker",
        window_s=5,
        actuality=1,
        capability=1,
        potentiality=1,
        failed=failed,
        succeeded=succeeded,
    )


def test_breaker_probes_then_closes_or_reopens_on_the_probes_report() -> None:
    breaker = Breaker(probe_after_s=30)
    breaker.open("w1", 0.0, "adaptation v1")
    assert breaker.due(10.0) == []
    assert breaker.due(30.0) == [("w1", "probe", "adaptation v1")]
    assert breaker.reported(report(failed=0, succeeded=0), 30.5) is None  # no work: no verdict
    assert breaker.reported(report(failed=3, succeeded=1), 31.0) == "reopen"
    assert breaker.isolated["w1"][0] == "open"
    assert breaker.due(61.0) == [("w1", "probe", "adaptation v1")]
    assert breaker.reported(report(failed=0, succeeded=5), 62.0) == "close"
    assert breaker.isolated == {}
    breaker.open("w1", 100.0, "v2")
    breaker.due(130.0)
    assert breaker.due(160.0) == [("w1", "close", "v2")]  # a quiet probation closes it too


def test_transformational_names_the_child_after_the_type_it_takes_and_a_fold_proposes_none() -> (
    None
):
    grow = policy("transformational", overloading=["s1.result.x.ok"], delegate=["llm_worker"])
    (step,) = plan(grow, Fleet({}), "root", FREE)[0]
    assert (step.action, step.target) == ("meta_system", "llm-worker")
    assert plan(policy("transformational", fold=["root/llm-worker"]), Fleet({}), "root", FREE) == (
        [],
        [],
    )
