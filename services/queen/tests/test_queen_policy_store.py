"""The policy store as plain data: validation, identity constraints, versions and diffs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from vsm.contract.policy import PolicyRecord
from vsm.queen.llm import TOOL
from vsm.queen.policies import (
    PolicyRejected,
    PolicyStore,
    check_author,
    diff,
    flatten,
    validate_policy,
)

IDENTITY = {
    "purpose": "serve",
    "constraints": [
        {
            "id": "floor",
            "description": "never below 1/s",
            "policy_type": "throttle",
            "path": "limits.*.max_rate_per_s",
            "op": "ge",
            "value": 1,
        },
        {
            "id": "no-shutdown",
            "description": "never shut down",
            "policy_type": "adaptation",
            "path": "actions.*",
            "op": "not_in",
            "value": ["shutdown"],
        },
    ],
}


def store_with(vsm_id: str, policy_type: str, *documents: dict[str, Any]) -> PolicyStore:
    store = PolicyStore()
    for document in documents:
        policy = store.admit(vsm_id, policy_type, document)
        store.apply(
            PolicyRecord(
                vsm_id=vsm_id,
                policy_type=policy_type,  # type: ignore[arg-type]
                version=store.next_version(vsm_id, policy_type),
                policy=policy,
                source="operator",
                created_at=datetime.now(UTC),
            )
        )
    return store


def test_a_policy_is_validated_against_its_type_with_every_reason() -> None:
    with pytest.raises(PolicyRejected) as rejected:
        validate_policy("throttle", {"limits": [{"target": "a", "max_rate_per_s": -1}], "x": 1})
    assert rejected.value.code == "invalid_policy"
    assert any("max_rate_per_s" in r for r in rejected.value.reasons)
    assert any(r.startswith("x") for r in rejected.value.reasons)


def test_a_policy_type_mismatch_is_refused() -> None:
    with pytest.raises(PolicyRejected, match="does not match"):
        validate_policy("throttle", {"policy_type": "identity", "purpose": "x"})


def test_shares_beyond_the_budget_are_refused() -> None:
    with pytest.raises(PolicyRejected, match="exceed"):
        validate_policy("resource_allocation", {"shares": {"a": 0.7, "b": 0.3}, "reserve": 0.1})


def test_identity_constraints_refuse_contradicting_policies_and_allow_the_rest() -> None:
    store = store_with("root", "identity", IDENTITY)
    store.admit("root", "throttle", {"limits": [{"target": "a", "max_rate_per_s": 2}]})
    with pytest.raises(PolicyRejected) as rejected:
        store.admit("root", "throttle", {"limits": [{"target": "a", "max_rate_per_s": 0.5}]})
    assert rejected.value.code == "invalid_against_identity"
    assert "floor" in rejected.value.reasons[0]
    with pytest.raises(PolicyRejected, match="no-shutdown"):
        store.admit(
            "root",
            "adaptation",
            {"mode": "defensive", "actions": ["shutdown"], "rationale": "panic"},
        )
    store.admit("root/child", "throttle", {"limits": [{"target": "a", "max_rate_per_s": 0.5}]})


def test_an_llm_never_decides_identity() -> None:
    with pytest.raises(PolicyRejected) as refused:
        check_author("llm:claude-x", "identity", "root/a")

    assert refused.value.code == "identity_reserved"
    assert "never by an LLM (llm:claude-x)" in refused.value.message
    check_author("operator", "identity", "root/a")
    check_author("parent", "identity", "root/a")
    check_author("llm:claude-x", "throttle", "root/a")
    offered = TOOL["input_schema"]["properties"]["policy"]["discriminator"]["mapping"]
    assert sorted(offered) == ["adaptation", "governance", "resource_allocation", "throttle"]


def test_versions_count_per_system_and_type_and_a_missing_one_is_a_clear_error() -> None:
    store = store_with("root", "governance", {"principles": ["a"]}, {"principles": ["a", "b"]})
    assert store.get("root", "governance").version == 2
    assert store.get("root", "governance", 1).policy.principles == ["a"]  # type: ignore[union-attr]
    with pytest.raises(PolicyRejected) as missing:
        store.get("root", "governance", 3)
    assert missing.value.code == "policy_version_not_found"
    with pytest.raises(PolicyRejected) as none:
        store.get("root/other", "governance")
    assert none.value.code == "policy_not_found"


def test_replaying_a_version_twice_keeps_one() -> None:
    store = store_with("root", "governance", {"principles": ["a"]})
    record = store.get("root", "governance", 1)
    assert store.apply(record) is False
    assert store.next_version("root", "governance") == 2


def test_diff_names_added_removed_and_changed_keys() -> None:
    added, removed, changed = diff(
        {"a": 1, "b": {"c": 2, "d": 3}, "l": [1]},
        {"a": 1, "b": {"c": 5}, "l": [1, 2], "e": []},
    )
    assert added == {"l.1": 2, "e": []}
    assert removed == {"b.d": 3}
    assert {k: (v.before, v.after) for k, v in changed.items()} == {"b.c": (2, 5)}


def test_flatten_walks_dicts_and_lists() -> None:
    assert flatten({"x": [{"y": 1}], "z": {}}) == {"x.0.y": 1, "z": {}}


def test_a_document_over_the_size_cap_is_refused_naming_the_setting() -> None:
    store = PolicyStore(max_document_bytes=1024)
    with pytest.raises(PolicyRejected) as refused:
        store.admit("root", "identity", {"purpose": "p" * 1024})
    assert refused.value.code == "invalid_policy"
    assert "POLICY_MAX_BYTES" in refused.value.message
    assert store.admit("root", "identity", {"purpose": "p" * 900}) is not None
