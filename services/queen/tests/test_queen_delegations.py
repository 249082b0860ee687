"""The work S5 handed to children: the hour's quota of structural spawns, idleness."""

from __future__ import annotations

from vsm.contract.policy import AdaptationPolicy
from vsm.queen.delegations import Delegations
from vsm.queen.structure import fold_policy


def test_a_parent_grows_at_most_its_quota_of_children_an_hour() -> None:
    grown = Delegations(max_per_hour=2)
    assert grown.refusal("root", ["worker"], 0.0) is None
    grown.open("root/worker", "root", ["worker"], 0.0, None)
    assert "already work in a child" in (grown.refusal("root", ["worker"], 1.0) or "")
    grown.open("root/api", "root", ["api"], 10.0, None)
    refused = grown.refusal("root", ["sensor"], 20.0)
    assert refused is not None
    assert "STRUCTURE_MAX_PER_HOUR: 2" in refused
    assert grown.refusal("root/api", ["sensor"], 20.0) is None  # another parent's own quota
    assert grown.refusal("root", ["sensor"], 3601.0) is None  # the hour slid past one


def test_a_child_without_work_for_the_idle_time_is_due_once() -> None:
    grown = Delegations(idle_s=5)
    grown.open("root/worker", "root", ["worker"], 0.0, None)
    grown.worked("root/worker", 4.0)
    grown.worked("root/other", 4.0)  # not a grown child: nothing kept
    assert grown.idle(8.0) == []
    [due] = grown.idle(9.0)
    assert (due.child, due.parent, due.retiring) == ("root/worker", "root", True)
    assert grown.idle(20.0) == []  # proposed once
    assert grown.close("root/worker") is due
    assert grown.children == {}


def test_folding_a_child_is_an_adaptation_policy_of_its_parent() -> None:
    grown = Delegations(idle_s=5)
    delegation = grown.open("root/worker", "root", ["worker"], 0.0, None)
    policy = AdaptationPolicy.model_validate(fold_policy(delegation, 5))
    assert (policy.mode, policy.fold, policy.delegate) == ("transformational", ["root/worker"], [])
    assert "root/worker" in policy.actions[0]
