"""What S5 counts: every signal, intervention, escalation and policy change, and the levels."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from vsm.kit.labels import BoundedLabel

MAX_VSM_IDS = 256
"""Viable systems labelled by id (signals name them); later ones count as `other`."""
MAX_REASONS = 64
"""Signal reasons and policy types labelled by name (messages choose them)."""


@dataclass(frozen=True)
class Metrics:
    signals: Counter
    interventions: Counter
    resolved: Counter
    escalations: Counter
    acknowledgements: Counter
    policy_changes: Counter
    policy_rejections: Counter
    synthesis: Counter
    pain: Gauge
    pleasure: Gauge
    viability: Gauge
    viability_coverage: Gauge
    meta_systems: Gauge
    vsm_ids: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_VSM_IDS))
    reasons: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_REASONS))
    policy_types: BoundedLabel = field(default_factory=lambda: BoundedLabel(MAX_REASONS))

    def escalated(self, vsm_id: str, to: str) -> None:
        self.escalations.labels(self.vsm_ids(vsm_id), to).inc()


def create_metrics(registry: CollectorRegistry) -> Metrics:
    def counter(name: str, doc: str, labels: list[str]) -> Counter:
        return Counter(name, doc, labels, registry=registry)

    def gauge(name: str, doc: str) -> Gauge:
        return Gauge(name, doc, ["vsm_id"], registry=registry)

    return Metrics(
        signals=counter(
            "vsm_algedonic_signals", "Algedonic signals taken in.", ["vsm_id", "kind", "reason"]
        ),
        interventions=counter(
            "vsm_interventions", "Interventions opened (one per episode).", ["vsm_id", "trigger"]
        ),
        resolved=counter("vsm_interventions_resolved", "Interventions resolved.", ["vsm_id"]),
        escalations=counter(
            "vsm_escalations", "Escalations of unresolved interventions.", ["vsm_id", "target"]
        ),
        acknowledgements=counter(
            "vsm_alert_acknowledgements", "Operator acknowledgements of alerts.", ["vsm_id"]
        ),
        policy_changes=counter(
            "vsm_policy_changes", "Policy versions stored.", ["policy_type", "source"]
        ),
        policy_rejections=counter(
            "vsm_policy_rejections", "Candidate policies refused.", ["policy_type", "code"]
        ),
        synthesis=counter(
            "vsm_policy_synthesis", "Policy syntheses, by LLM outcome.", ["llm_outcome"]
        ),
        pain=gauge("vsm_pain_level", "Decayed pain level (0..1)."),
        pleasure=gauge("vsm_pleasure_level", "Decayed pleasure level (0..1)."),
        viability=gauge("vsm_viability", "Viability score over the measured terms (0..1)."),
        meta_systems=gauge("vsm_meta_systems", "Child viable systems (meta-systems) of each."),
        viability_coverage=gauge(
            "vsm_viability_coverage", "Share of the viability weight actually measured (0..1)."
        ),
    )
