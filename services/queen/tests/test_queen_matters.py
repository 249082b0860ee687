"""S5's matters in hand (open interventions, pending approvals) through a journal snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import ApprovalRequested
from vsm.contract.envelope import Envelope
from vsm.contract.system5 import InterventionOpened, System5Snapshot
from vsm.queen import interventions, matters
from vsm.queen.algedonic import Thresholds
from vsm.queen.approvals import Desk
from vsm.queen.policies import validate_policy
from vsm.queen.system5 import System5

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Thresholds(half_life_s=60.0, intervene_at=0.7, resolve_below=0.3, window=5)
THROTTLE = validate_policy("throttle", {"limits": [{"target": "a", "max_rate_per_s": 5}]})


def signal(n: int) -> Envelope[AlgedonicSignal]:
    body = AlgedonicSignal(kind="pain", intensity=0.9, origin="operations/w1", reason="burst")
    return Envelope.wrap(body, source="test", vsm_id="root/child").model_copy(
        update={"id": f"sig-{n}"}
    )


def in_hand() -> tuple[System5, Desk]:
    """An intervention opened, escalated once, with its policy; a second one acknowledged
    elsewhere resolved; an approval waiting, announced."""
    s5, desk = System5(thresholds=LIMITS), Desk(max_pending=4)
    opened = None
    for n in range(3):
        opened = s5.feel(signal(n), NOW + timedelta(seconds=n)) or opened
    assert opened is not None
    opened.opened = Envelope.wrap(
        InterventionOpened(
            intervention_id=opened.id, trigger="pain_threshold", reason="burst", pain_level=0.9
        ),
        source="test",
        cause=opened.cause,
    )
    opened.policy_type, opened.policy_version, opened.throttled = "throttle", 3, "a"
    opened.alert_ids.append("al-1")
    interventions.escalate(opened, NOW + timedelta(seconds=120))
    proposal, _ = desk.open(
        "root/child", THROTTLE, source="s4:variety", reason="slow it", why="needs a person",
        now=NOW, deadline_s=60, intervention_id=opened.id, causation=["sig-0"],
    )  # fmt: skip
    proposal.requested = Envelope.wrap(
        ApprovalRequested(approval=proposal.approval), source="test", cause=opened.cause
    )
    return s5, desk


def test_open_interventions_and_pending_approvals_come_back_from_a_snapshot() -> None:
    s5, desk = in_hand()
    snapshot = matters.snapshot_of(s5, desk)
    read_back = System5Snapshot.model_validate_json(snapshot.model_dump_json())
    assert read_back == snapshot

    s5_after, desk_after = System5(thresholds=LIMITS), Desk(max_pending=4)
    matters.restore(s5_after, desk_after, read_back)

    [(intervention_id, before)] = s5.interventions.items()
    after = s5_after.interventions[intervention_id]
    assert after.state() == before.state()  # status, level, causes, policy, alerts, opened_by
    assert after.cause == before.cause
    assert after.opened == before.opened
    assert (after.throttled, after.last_escalated_at) == ("a", before.last_escalated_at)
    assert after.episode.reasons == before.episode.reasons
    assert s5_after.feelings["root/child"].episode is after.episode  # resolves as it would
    assert desk_after.listing() == desk.listing()
    [(approval_id, proposal)] = desk.pending.items()
    kept = desk_after.waiting(approval_id)
    assert (kept.document, kept.causation, kept.requested) == (
        proposal.document,
        proposal.causation,
        proposal.requested,
    )
    assert matters.snapshot_of(s5_after, desk_after) == snapshot


def test_a_restored_episode_resolves_once_pain_subsides_and_is_then_not_kept() -> None:
    s5, desk = in_hand()
    s5_after = System5(thresholds=LIMITS)
    matters.restore(s5_after, Desk(), matters.snapshot_of(s5, desk))
    [resolved] = s5_after.settle(NOW + timedelta(minutes=10))
    assert resolved.status == "resolved"
    assert matters.snapshot_of(s5_after, Desk()).interventions == []


def test_an_approval_past_its_deadline_comes_back_and_is_overdue_at_once() -> None:
    s5, desk = in_hand()
    desk_after = Desk()
    matters.restore(System5(thresholds=LIMITS), desk_after, matters.snapshot_of(s5, desk))
    [overdue] = desk_after.overdue(NOW + timedelta(seconds=61))
    assert overdue.approval == next(iter(desk.pending.values())).approval


def test_restoring_keeps_the_desk_bounded() -> None:
    s5, desk = in_hand()
    full = Desk(max_pending=0)
    matters.restore(System5(thresholds=LIMITS), full, matters.snapshot_of(s5, desk))
    assert full.pending == {}
