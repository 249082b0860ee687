"""Policies applied as plain data: throttles, restores, shares, damping and its release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from vsm.contract.control import Resources
from vsm.contract.operations import AgentInfo
from vsm.contract.policy import Policy, PolicyRecord
from vsm.control.ledger import Ledger
from vsm.control.system3 import System3

POLICY = TypeAdapter(Policy)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def system3(*agents: tuple[str, str, int]) -> System3:
    ledger = Ledger(Resources(concurrency_slots=20, llm_tokens_per_min=1000, memory_mb=0))
    for agent_id, kind, slots in agents:
        ledger.admit(
            AgentInfo(
                agent_id=agent_id,
                agent_type=kind,
                allocation=slots,
                max_allocation=64,
                spawned_at=T0,
            )
        )
    return System3(ledger)


def record(version: int, document: dict[str, Any], at: datetime = T0) -> PolicyRecord:
    policy = POLICY.validate_python(document)
    return PolicyRecord(
        vsm_id="root",
        policy_type=policy.policy_type,
        version=version,
        policy=policy,
        source="operator",
        created_at=at,
    )


def throttle(version: int, *limits: dict[str, Any], **more: Any) -> PolicyRecord:
    return record(version, {"policy_type": "throttle", "limits": list(limits), **more})


def held(s3: System3, agent_id: str) -> tuple[int, float | None]:
    account = s3.ledger.account(agent_id)
    assert account is not None
    return account.resources.concurrency_slots, account.max_rate_per_s


def test_each_agent_gets_its_most_specific_limit() -> None:
    s3 = system3(("w-1", "worker", 4), ("w-2", "worker", 4), ("api-1", "api", 4))
    policy = throttle(
        3,
        {"target": "*", "max_rate_per_s": 50},
        {"target": "worker", "max_rate_per_s": 5, "max_concurrency": 2},
        {"target": "w-2", "max_rate_per_s": 1, "reason": "failing unit"},
    )
    changes = s3.apply_policy(policy, T0, cause="env")

    assert {c.agent_id: (c.resources.concurrency_slots, c.max_rate_per_s) for c in changes} == {
        "w-1": (2, 5.0),
        "w-2": (4, 1.0),
        "api-1": (4, 50.0),
    }
    assert all(c.policy == "throttle v3" and c.cause == "env" for c in changes)
    assert {c.kind for c in changes} == {"throttle"}
    w2 = next(c for c in changes if c.agent_id == "w-2")
    assert "failing unit" in w2.reason
    assert "w-2 limited to 1/s" in w2.reason


def test_an_origin_naming_the_agent_is_as_specific_as_its_id() -> None:
    s3 = system3(("api-1", "api", 4), ("api-2", "api", 4))
    policy = throttle(
        1,
        {"target": "api", "max_rate_per_s": 9},
        {"target": "operations/api-1", "max_rate_per_s": 0.5, "max_concurrency": 1},
    )
    changes = s3.apply_policy(policy, T0, None)
    assert {c.agent_id: (c.resources.concurrency_slots, c.max_rate_per_s) for c in changes} == {
        "api-1": (1, 0.5),
        "api-2": (4, 9.0),
    }


def test_a_limit_gone_in_the_next_version_is_restored_and_unchanged_agents_are_quiet() -> None:
    s3 = system3(("w-1", "worker", 4), ("w-2", "worker", 4))
    s3.apply_policy(
        throttle(
            1,
            {"target": "w-1", "max_rate_per_s": 2, "max_concurrency": 1},
            {"target": "w-2", "max_rate_per_s": 3},
        ),
        T0,
        None,
    )
    changes = s3.apply_policy(throttle(2, {"target": "w-2", "max_rate_per_s": 3}), T0, None)

    assert [(c.agent_id, c.kind) for c in changes] == [("w-1", "restored")]
    assert held(s3, "w-1") == (4, None)
    assert held(s3, "w-2") == (4, 3.0)


def test_shares_split_a_types_share_and_give_at_least_one_slot() -> None:
    s3 = system3(("w-1", "worker", 4), ("w-2", "worker", 4), ("llm-1", "llm_worker", 4))
    policy = record(
        1,
        {
            "policy_type": "resource_allocation",
            "shares": {"worker": 0.5, "llm-1": 0.01},
            "reserve": 0.1,
        },
    )
    changes = s3.apply_policy(policy, T0, None)
    got = {
        c.agent_id: (c.resources.concurrency_slots, c.resources.llm_tokens_per_min) for c in changes
    }
    assert got == {"w-1": (5, 250), "w-2": (5, 250), "llm-1": (1, 10)}
    assert all(c.kind == "shares" for c in changes)
    assert (
        "split among 2 worker agents" in changes[1].reason or "split among 2" in changes[2].reason
    )


def test_damping_holds_the_latest_wish_and_applies_it_when_the_cool_down_ends() -> None:
    s3 = system3(("w-1", "worker", 4))
    s3.damper.damp("w-1", T0 + timedelta(seconds=30))
    first = s3.apply_policy(throttle(1, {"target": "w-1", "max_rate_per_s": 2}), T0, "v1")
    second = s3.apply_policy(throttle(2, {"target": "w-1", "max_rate_per_s": 7}), T0, "v2")
    assert first == second == []
    assert held(s3, "w-1") == (4, None)
    assert s3.tick(T0 + timedelta(seconds=10)) == []  # still cooling down

    released = s3.tick(T0 + timedelta(seconds=31))

    assert [(c.kind, c.max_rate_per_s, c.policy, c.cause) for c in released] == [
        ("damped_release", 7.0, "throttle v2", "v2")
    ]
    assert held(s3, "w-1") == (4, 7.0)
    assert s3.tick(T0 + timedelta(seconds=32)) == []


def test_an_expiring_throttle_is_lifted_when_its_time_is_up() -> None:
    s3 = system3(("w-1", "worker", 4))
    limit = {"target": "w-1", "max_rate_per_s": 2, "max_concurrency": 1}
    s3.apply_policy(throttle(1, limit, expires_after_s=60), T0, "v1")
    assert s3.tick(T0 + timedelta(seconds=59)) == []
    lifted = s3.tick(T0 + timedelta(seconds=61))
    assert [(c.kind, c.policy) for c in lifted] == [("restored", "throttle v1 expired")]
    assert held(s3, "w-1") == (4, None)


def test_policies_of_other_kinds_or_unknown_systems_change_nothing() -> None:
    s3 = system3(("w-1", "worker", 4))
    governance = record(1, {"policy_type": "governance", "principles": ["x"]})
    assert s3.apply_policy(governance, T0, None) == []
    elsewhere = throttle(1, {"target": "*", "max_rate_per_s": 1}).model_copy(
        update={"vsm_id": "root/other"}
    )
    assert s3.apply_policy(elsewhere, T0, None) == []
