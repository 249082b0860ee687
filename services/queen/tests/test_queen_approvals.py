"""Decision rights over plain data: which decisions need a person, and the bounded desk of
proposals with their deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from vsm.contract.policy import ApprovalRule, GovernancePolicy, Policy
from vsm.queen.approvals import Desk, Proposal, needs_approval
from vsm.queen.meta import Refused
from vsm.queen.policies import PolicyRejected, validate_policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
THROTTLE = validate_policy("throttle", {"limits": [{"target": "a", "max_rate_per_s": 5}]})
WIDE = validate_policy(
    "throttle", {"limits": [{"target": "a", "max_rate_per_s": 5, "max_concurrency": 200}]}
)
IDENTITY = validate_policy("identity", {"purpose": "serve"})


def governance(**fields: object) -> GovernancePolicy:
    return GovernancePolicy.model_validate(
        {"policy_type": "governance", "principles": ["p"], **fields}
    )


def test_an_existing_governance_document_stays_valid_and_holds_nothing() -> None:
    old = governance(decision_rights={"budget": "S3"})
    assert old.approvals == []
    assert old.approval_deadline_s == 3600
    assert needs_approval(THROTTLE, "llm:claude", old) is None
    assert needs_approval(THROTTLE, "rules", None) is None


def test_llm_made_throttles_wait_and_rule_made_ones_do_not() -> None:
    rights = governance(approvals=[{"policy_type": "throttle", "authors": ["llm"]}])
    assert needs_approval(THROTTLE, "llm:claude", rights) == "throttle by llm needs approval"
    assert needs_approval(THROTTLE, "rules", rights) is None
    assert needs_approval(THROTTLE, "s4:defensive", rights) is None
    assert needs_approval(THROTTLE, "operator", rights) is None


def test_a_threshold_holds_only_what_exceeds_it() -> None:
    rule = {
        "policy_type": "throttle",
        "authors": ["rules", "s4", "llm"],
        "path": "limits.*.max_concurrency",
        "above": 100,
        "description": "more than 100 at once needs a person",
    }
    rights = governance(approvals=[rule])
    assert needs_approval(THROTTLE, "rules", rights) is None
    assert needs_approval(WIDE, "rules", rights) == "more than 100 at once needs a person"
    with pytest.raises(ValidationError, match="path and above go together"):
        ApprovalRule.model_validate({"policy_type": "throttle", "authors": ["s4"], "above": 1})


def test_an_operator_decision_right_and_identity_always_need_an_operator() -> None:
    rights = governance(decision_rights={"throttle": "operator"})
    assert (
        needs_approval(THROTTLE, "rules", rights)
        == "the decision right for throttle is the operator's"
    )
    assert needs_approval(IDENTITY, "rules", None) == "identity changes always need an operator"
    assert needs_approval(IDENTITY, "operator", None) is None
    assert needs_approval(IDENTITY, "parent", None) is None


def open_one(desk: Desk, policy: Policy = THROTTLE) -> tuple[Proposal, bool]:
    return desk.open(
        "root", policy, source="llm:m", reason="r", why="w", now=NOW, deadline_s=60,
        intervention_id=None, causation=[],
    )  # fmt: skip


def test_the_desk_is_bounded_deduplicated_and_expires_by_deadline() -> None:
    desk = Desk(max_pending=1)
    first, new = open_one(desk)
    again, new_again = open_one(desk)
    assert new
    assert not new_again
    assert again is first
    with pytest.raises(PolicyRejected) as full:
        open_one(desk, WIDE)
    assert full.value.code == "approvals_full"
    assert desk.overdue(NOW + timedelta(seconds=59)) == []
    [late] = desk.overdue(NOW + timedelta(seconds=60))
    closed = desk.close(late, "expired", "s5:deadline", NOW)
    assert (closed.status, closed.decided_by) == ("expired", "s5:deadline")
    assert desk.listing() == []


def test_a_closed_proposal_is_told_apart_from_an_unknown_one() -> None:
    desk = Desk()
    proposal, _ = open_one(desk)
    approval_id = proposal.approval.approval_id
    assert desk.waiting(approval_id) is proposal
    desk.close(proposal, "rejected", "telegram:op", NOW)
    with pytest.raises(Refused) as closed:
        desk.waiting(approval_id)
    assert closed.value.code == "approval_closed"
    with pytest.raises(Refused) as unknown:
        desk.waiting("ap-000000000000")
    assert unknown.value.code == "approval_not_found"
