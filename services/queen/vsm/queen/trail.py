"""The causal trail: every message of the loop by id, and the chain any one of them is in.

Fed from the `vsm.trail` stream. A chain is the message's causes up to the root (following
`causation_id`) and everything the root caused, in causal order (depth first, siblings by
time), so `GET /api/vsm/trace/<any id of the chain>` tells the whole story from the signal
to the allocation change. Bounded: the oldest entries are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vsm.contract.envelope import Envelope
from vsm.contract.system5 import TraceStep

KEEP = 100_000
MAX_CHAIN = 500


def _signal(f: dict[str, Any]) -> str:
    return f"{f['kind']} {f['intensity']:.2f} from {f['origin']} ({f['reason']})"


def _policy(f: dict[str, Any]) -> str:
    r = f["record"]
    return f"policy {r['policy_type']} v{r['version']} by {r['source']}: {r['reason']}"


def _allocation(f: dict[str, Any]) -> str:
    rate = f["max_rate_per_s"]
    limit = f", at most {rate}/s" if rate is not None else ", no rate limit"
    slots = f["resources"]["concurrency_slots"]
    return f"allocation of {f['agent_id']}: {slots} slot(s){limit} ({f['reason']})"


def _opened(f: dict[str, Any]) -> str:
    return f"intervention {f['intervention_id']} opened ({f['reason']}, pain {f['pain_level']})"


def _resolved(f: dict[str, Any]) -> str:
    return f"intervention {f['intervention_id']} resolved after {f['lasted_s']:.1f} s"


def _rescheduled(f: dict[str, Any]) -> str:
    return f"S2 rescheduled {f['agent_id']}: capacity {f['capacity']}, {f['queued']} queued"


def _held(f: dict[str, Any]) -> str:
    a = f["approval"]
    return (
        f"approval {a['approval_id']} requested: {a['policy_type']} by {a['source']} "
        f"({a['why']}), until {a['expires_at']}"
    )


def _decided(f: dict[str, Any]) -> str:
    return f"approval {f['approval_id']} {f['outcome']} by {f['by']}"


def _rehomed(f: dict[str, Any]) -> str:
    agent = f["agent"]
    return f"agent {agent['agent_id']} moved from {f['from_vsm_id']} to {agent['vsm_id']}"


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "AgentRehomed": _rehomed,
    "AlgedonicSignal": _signal,
    "PolicyChanged": _policy,
    "AllocationChanged": _allocation,
    "InterventionOpened": _opened,
    "InterventionResolved": _resolved,
    "Rescheduled": _rescheduled,
    "ApprovalRequested": _held,
    "ApprovalDecided": _decided,
}


def summary(envelope: Envelope[Any]) -> str:
    """One line in VSM terms: what this message says."""
    kind = type(envelope.data).__name__
    fields = envelope.data.model_dump(mode="json")
    known = SUMMARIES.get(kind)
    if known is not None:
        return known(fields)
    plain = [(k, v) for k, v in fields.items() if isinstance(v, str | int | float | bool)]
    return f"{kind} " + ", ".join(f"{k}={v}" for k, v in plain[:4])


@dataclass
class Trail:
    keep: int = KEEP
    steps: OrderedDict[str, TraceStep] = field(default_factory=OrderedDict)
    caused: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def record(self, envelope: Envelope[Any]) -> None:
        if envelope.id in self.steps:
            return
        self.steps[envelope.id] = TraceStep(
            id=envelope.id,
            type=envelope.type,
            source=envelope.source,
            time=envelope.time,
            vsm_id=envelope.vsm_id,
            causation_id=envelope.causation_id,
            depth=0,
            summary=summary(envelope)[:512],
        )
        if envelope.causation_id:
            self.caused[envelope.causation_id].append(envelope.id)
        while len(self.steps) > self.keep:
            old_id, old = self.steps.popitem(last=False)
            self.caused.pop(old_id, None)
            # Also out of its cause's list: a cause never seen (a made-up causation id) would
            # otherwise keep a key for every message that named it.
            siblings = self.caused.get(old.causation_id or "")
            if siblings is not None:
                siblings.remove(old_id)
                if not siblings:
                    del self.caused[old.causation_id or ""]

    def root_of(self, message_id: str) -> str:
        current, seen = message_id, {message_id}
        while (step := self.steps.get(current)) and step.causation_id in self.steps:
            current = step.causation_id or current
            if current in seen:
                break
            seen.add(current)
        return current

    def chain(self, message_id: str) -> list[TraceStep] | None:
        """The whole chain `message_id` is in, root first; None for an id never seen."""
        if message_id not in self.steps:
            return None
        found: list[TraceStep] = []
        pending = [(self.root_of(message_id), 0)]
        visited: set[str] = set()
        while pending and len(found) < MAX_CHAIN:
            step_id, depth = pending.pop()
            if step_id in visited or step_id not in self.steps:
                continue
            visited.add(step_id)
            found.append(self.steps[step_id].model_copy(update={"depth": depth}))
            children = sorted(
                (self.steps[c] for c in self.caused.get(step_id, []) if c in self.steps),
                key=lambda s: s.time,
                reverse=True,
            )
            pending.extend((child.id, depth + 1) for child in children)
        return found


def render(chain: list[TraceStep]) -> str:
    """The chain as an indented tree, one line per message."""
    return "\n".join(
        f"{'  ' * step.depth}{step.time:%H:%M:%S.%f}"[:-3]
        + f" [{step.vsm_id}] {step.summary} ({step.type}, {step.id})"
        for step in chain
    )
