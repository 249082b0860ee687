"""The policy store as plain data: versions per (viable system, policy type), validation
against the schema and the identity constraints, and diffs between versions."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from vsm.contract.errors import Refused
from vsm.contract.policy import (
    IdentityConstraint,
    IdentityPolicy,
    Policy,
    PolicyRecord,
    ValueChange,
)

POLICY: TypeAdapter[Policy] = TypeAdapter(Policy)


class PolicyRejected(Refused):
    """A policy (or a question about one) S5 will not take, with each of its `reasons`."""

    def __init__(self, code: str, message: str, reasons: list[str] | None = None) -> None:
        self.reasons = reasons or [message]
        super().__init__(code, message, {"reasons": self.reasons})


def validate_policy(policy_type: str, document: dict[str, Any]) -> Policy:
    """The document as a typed policy of `policy_type`, or `invalid_policy` with every reason."""
    declared = document.get("policy_type", policy_type)
    if declared != policy_type:
        raise PolicyRejected(
            "invalid_policy",
            f"policy_type {declared!r} does not match {policy_type!r}",
        )
    try:
        return POLICY.validate_python({**document, "policy_type": policy_type})
    except ValidationError as error:
        reasons = [
            f"{'.'.join(str(p) for p in problem['loc'][1:]) or 'policy'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise PolicyRejected(
            "invalid_policy", f"the {policy_type} policy is invalid: " + "; ".join(reasons), reasons
        ) from error


def check_size(document: dict[str, Any], most: int) -> None:
    """`invalid_policy` naming the field when the document's compact JSON exceeds `most`."""
    size = len(json.dumps(document, separators=(",", ":"), default=str).encode())
    if size > most:
        reason = f"policy: the document is {size} bytes; at most {most} (POLICY_MAX_BYTES)"
        raise PolicyRejected("invalid_policy", reason, [reason])


def check_author(source: str, policy_type: str, vsm_id: str) -> None:
    """An LLM never decides identity: a model may propose any other policy, but who the viable
    system is stays with people (and what a child inherits from its parent)."""
    if policy_type == "identity" and source.startswith("llm:"):
        raise PolicyRejected(
            "identity_reserved",
            f"the identity of {vsm_id} is decided by operators, never by an LLM ({source})",
        )


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}


def values_at(document: Any, path: list[str]) -> Iterator[Any]:
    """Every value at a dotted path; `*` walks every key of a mapping or item of a list."""
    if not path:
        yield document
        return
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        children = (
            document.values() if head == "*" else [document[head]] if head in document else []
        )
    elif isinstance(document, list):
        children = (
            document
            if head == "*"
            else [document[int(head)]]
            if head.isdigit() and int(head) < len(document)
            else []
        )
    else:
        children = []
    for child in children:
        yield from values_at(child, rest)


def broken_by(policy: Policy, constraint: IdentityConstraint) -> list[str]:
    if constraint.policy_type != policy.policy_type:
        return []
    check = _OPS[constraint.op]
    broken = []
    for value in values_at(policy.model_dump(mode="json"), constraint.path.split(".")):
        try:
            kept = check(value, constraint.value)
        except TypeError:
            kept = False
        if not kept:
            broken.append(
                f"identity constraint {constraint.id!r} ({constraint.description}): "
                f"{constraint.path} = {value!r} must be {constraint.op} {constraint.value!r}"
            )
    return broken


def identity_violations(policy: Policy, identity: IdentityPolicy | None) -> list[str]:
    if identity is None:
        return []
    return [reason for c in identity.constraints for reason in broken_by(policy, c)]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "l": [x]}` -> `{"a.b": 1, "l.0": x}`; empty containers are leaves."""
    if isinstance(value, dict) and value:
        items: Iterator[tuple[str, Any]] = iter(value.items())
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, child in items:
        flat |= flatten(child, f"{prefix}.{key}" if prefix else key)
    return flat


def diff(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, ValueChange]]:
    """Keys added, removed and changed from `before` to `after` (dotted paths)."""
    old, new = flatten(before), flatten(after)
    added = {k: v for k, v in new.items() if k not in old}
    removed = {k: v for k, v in old.items() if k not in new}
    changed = {
        k: ValueChange(before=old[k], after=new[k])
        for k in old.keys() & new.keys()
        if old[k] != new[k]
    }
    return added, removed, dict(sorted(changed.items()))


@dataclass
class PolicyStore:
    """The versions kept of every policy, by (vsm_id, policy_type), oldest first: the latest
    `keep` of each (`POLICY_VERSIONS_KEPT`); an older one is forgotten (its number is never
    given again)."""

    versions: dict[tuple[str, str], list[PolicyRecord]] = field(default_factory=dict)
    max_document_bytes: int = 64 * 1024
    """The largest document taken (its compact JSON): every version kept is in each snapshot."""
    keep: int = 100

    def apply(self, record: PolicyRecord) -> bool:
        """Add the record if it is the next version (replay may see one twice); whether added."""
        key = (record.vsm_id, record.policy_type)
        if record.version != self.next_version(*key):
            return False
        history = self.versions.setdefault(key, [])
        history.append(record)
        del history[: -self.keep]
        return True

    def restore(self, records: list[PolicyRecord]) -> None:
        """The versions kept, from a snapshot (each key's in version order), and nothing else."""
        self.versions = {}
        for record in records:
            history = self.versions.setdefault((record.vsm_id, record.policy_type), [])
            history.append(record)
        for history in self.versions.values():
            del history[: -self.keep]

    def records(self) -> list[PolicyRecord]:
        """Every version kept, each key's in version order (what a snapshot holds)."""
        return [record for _, history in sorted(self.versions.items()) for record in history]

    def next_version(self, vsm_id: str, policy_type: str) -> int:
        latest = self.latest(vsm_id, policy_type)
        return 1 if latest is None else latest.version + 1

    def latest(self, vsm_id: str, policy_type: str) -> PolicyRecord | None:
        history = self.versions.get((vsm_id, policy_type))
        return history[-1] if history else None

    def get(self, vsm_id: str, policy_type: str, version: int | None = None) -> PolicyRecord:
        history = self.versions.get((vsm_id, policy_type), [])
        if not history:
            raise PolicyRejected(
                "policy_not_found", f"no {policy_type} policy is stored for {vsm_id}"
            )
        if version is None:
            return history[-1]
        first, last = history[0].version, history[-1].version
        if not first <= version <= last:
            kept = f"versions {first}..{last}" + (
                f" (older ones are not kept: POLICY_VERSIONS_KEPT is {self.keep})"
                if first > 1
                else ""
            )
            raise PolicyRejected(
                "policy_version_not_found",
                f"{policy_type} policy of {vsm_id} has {kept}, not {version}",
            )
        return history[version - first]

    def identity(self, vsm_id: str) -> IdentityPolicy | None:
        record = self.latest(vsm_id, "identity")
        return record.policy if record and isinstance(record.policy, IdentityPolicy) else None

    def latest_of(self, vsm_id: str) -> list[PolicyRecord]:
        return [h[-1] for (v, _), h in sorted(self.versions.items()) if v == vsm_id and h]

    def admit(self, vsm_id: str, policy_type: str, document: dict[str, Any]) -> Policy:
        """Validate a candidate against its size, the schema and the current identity (or
        raise)."""
        check_size(document, self.max_document_bytes)
        policy = validate_policy(policy_type, document)
        broken = identity_violations(policy, self.identity(vsm_id))
        if broken:
            raise PolicyRejected(
                "invalid_against_identity",
                f"the {policy_type} policy contradicts the identity of {vsm_id}: "
                + "; ".join(broken),
                broken,
            )
        return policy

    def diff(self, vsm_id: str, policy_type: str, first: int, second: int) -> Any:
        a = self.get(vsm_id, policy_type, first).policy.model_dump(mode="json")
        b = self.get(vsm_id, policy_type, second).policy.model_dump(mode="json")
        return diff(a, b)
