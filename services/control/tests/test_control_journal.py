"""S3's journal snapshot as plain data: what is written is what comes back, through JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from vsm.contract.control import AllocationRequest, Resources, System3Snapshot
from vsm.contract.llm import LlmUsage
from vsm.contract.operations import AgentInfo
from vsm.contract.policy import Policy, PolicyRecord
from vsm.control import journal
from vsm.control.budgets import carve, set_budget
from vsm.control.ledger import Ledger
from vsm.control.system3 import System3

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def system3(*agents: tuple[str, int]) -> System3:
    ledger = Ledger(Resources(concurrency_slots=20, llm_tokens_per_min=1000))
    for agent_id, slots in agents:
        info = AgentInfo(
            agent_id=agent_id,
            agent_type="worker",
            allocation=slots,
            max_allocation=64,
            spawned_at=T0,
        )
        ledger.admit(info)
    return System3(ledger)


def throttle(version: int, *limits: dict[str, Any], **more: Any) -> PolicyRecord:
    document = {"policy_type": "throttle", "limits": list(limits), **more}
    return PolicyRecord(
        vsm_id="root",
        policy_type="throttle",
        version=version,
        policy=TypeAdapter(Policy).validate_python(document),
        source="operator",
        created_at=T0,
    )


def held(s3: System3, agent_id: str) -> tuple[int, float | None]:
    account = s3.ledger.account(agent_id)
    assert account is not None
    return account.resources.concurrency_slots, account.max_rate_per_s


def decided() -> System3:
    """Budgets, a carve, a grant, an expiring throttle and a damped agent with a held wish."""
    s3 = system3(("w-1", 4), ("w-2", 2))
    set_budget(s3.ledger, "root", Resources(concurrency_slots=30, llm_tokens_per_min=900))
    carve(s3.ledger, "root", "root/child", Resources(concurrency_slots=5))
    s3.request(AllocationRequest(agent_id="w-2", resources=Resources(concurrency_slots=6)), T0)
    s3.damper.damp("w-2", T0 + timedelta(seconds=30))
    w1 = {"target": "w-1", "max_rate_per_s": 5, "max_concurrency": 1}
    w2 = {"target": "w-2", "max_rate_per_s": 3}
    s3.apply_policy(throttle(1, w1, w2, expires_after_s=60), T0, "v1")
    return s3


def test_a_restored_system3_takes_the_same_snapshot_and_the_same_decisions() -> None:
    s3 = decided()
    written = journal.snapshot_of(s3)
    read_back = System3Snapshot.model_validate_json(written.model_dump_json())
    restored = System3(Ledger(Resources()))

    journal.restore(restored, read_back)

    assert journal.snapshot_of(restored) == written
    assert restored.ledger.systems["root"].children == {
        "root/child": Resources(concurrency_slots=5)
    }
    assert restored.ledger.systems["root/child"].budget == Resources(concurrency_slots=5)
    assert held(restored, "w-2") == (6, None)
    # What was pending goes on as it would have: the held wish when the cool-down ends, the
    # throttle lifted when its time is up.
    assert held(restored, "w-1") == (1, 5.0)
    released = restored.tick(T0 + timedelta(seconds=31))
    assert [(c.agent_id, c.kind, c.max_rate_per_s) for c in released] == [
        ("w-2", "damped_release", 3.0)
    ]
    lifted = restored.tick(T0 + timedelta(seconds=61))
    assert {(c.agent_id, c.kind) for c in lifted} == {("w-1", "restored"), ("w-2", "restored")}


def test_an_unchanged_system3_takes_an_equal_snapshot() -> None:
    s3 = decided()
    assert journal.snapshot_of(s3) == journal.snapshot_of(s3)
    s3.damper.damp("w-1", T0 + timedelta(seconds=90))
    assert journal.snapshot_of(s3) != journal.snapshot_of(decided())


def test_the_days_llm_spend_comes_back_with_the_snapshot() -> None:
    s3 = decided()
    set_budget(
        s3.ledger,
        "root",
        Resources(concurrency_slots=30, llm_tokens_per_min=900, llm_usd_per_day=10.0),
    )
    for cost in (0.25, 0.5):
        usage = LlmUsage(
            agent_id="w-1",
            agent_type="worker",
            model="claude-sonnet-4-5",
            input_tokens=100,
            output_tokens=50,
            cost_usd=cost,
            duration_s=0.1,
        )
        s3.use(usage, "root")
    written = journal.snapshot_of(s3)
    restored = System3(Ledger(Resources()))

    journal.restore(restored, System3Snapshot.model_validate_json(written.model_dump_json()))

    assert restored.today().agents == {"w-1": 0.75}
    assert restored.today().calls == {"w-1": 2}
    assert journal.snapshot_of(restored) == written
