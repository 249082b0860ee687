"""What S3 measures: how full each budget is, every allocation change, every audit answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from vsm.contract.control import RESOURCE_KINDS, Resources
from vsm.kit.labels import OTHER, BoundedLabel

MAX_VSM_IDS = 256
"""Viable systems labelled by id; later ones count as `other`."""


@dataclass(frozen=True)
class Metrics:
    allocation_ratio: Gauge
    allocation_changes: Counter
    audits: Counter
    llm_headroom: Gauge
    adaptation_actions: Counter
    vsm_ids: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_VSM_IDS))

    def budget_used(self, vsm_id: str, budget: Resources, allocated: Resources) -> None:
        if self.vsm_ids(vsm_id) == OTHER:  # a ratio of several systems means nothing
            return
        for kind in RESOURCE_KINDS:
            total = getattr(budget, kind)
            used = getattr(allocated, kind) / total if total else 0.0
            self.allocation_ratio.labels(vsm_id, kind).set(used)

    def llm_headroom_left(self, vsm_id: str, headroom_usd: float | None) -> None:
        """A system's USD left today under its cap (no series without a USD budget)."""
        if headroom_usd is not None and self.vsm_ids(vsm_id) != OTHER:
            self.llm_headroom.labels(vsm_id).set(headroom_usd)


def create_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        allocation_ratio=Gauge(
            "vsm_allocation_ratio",
            "Allocated share of a viable system's budget, per resource (over 1: over-committed).",
            ["vsm_id", "resource"],
            registry=registry,
        ),
        allocation_changes=Counter(
            "vsm_allocation_changes",
            "Allocation changes published, by cause "
            "(request|preempted|throttle|shares|restored|damped_release|budget|adaptation).",
            ["vsm_id", "reason"],
            registry=registry,
        ),
        audits=Counter(
            "vsm_audits",
            "Agents audited by S3*, by outcome (answered|timeout).",
            ["vsm_id", "outcome"],
            registry=registry,
        ),
        llm_headroom=Gauge(
            "vsm_llm_budget_headroom_usd",
            "USD a viable system may still spend on LLM calls today: its own daily cap (budget "
            "less children's) less today's spend.",
            ["vsm_id"],
            registry=registry,
        ),
        adaptation_actions=Counter(
            "vsm_adaptation_actions",
            "Steps of adaptation policies, by kind, action and outcome (done|refused|proposed).",
            ["vsm_id", "kind", "action", "outcome"],
            registry=registry,
        ),
    )
