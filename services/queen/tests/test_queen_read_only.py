"""A query about a viable system creates no state for it; labels stay bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from vsm.queen.metrics import MAX_VSM_IDS, create_metrics
from vsm.queen.system5 import System5


def test_reading_a_system_s_viability_or_situation_keeps_nothing_for_it() -> None:
    s5, now = System5(), datetime.now(UTC)
    for index in range(100):
        vsm_id = f"root/made-up-{index}"
        s5.viability(vsm_id, now)
        s5.algedonic_state(vsm_id, now)
        s5.situation(vsm_id, now)
        s5.state(vsm_id, now, "none")
    assert s5.feelings == {}
    assert s5.measured == {}


def test_queen_s_labels_take_a_bounded_number_of_viable_systems_and_reasons() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    for index in range(MAX_VSM_IDS + 1_000):
        metrics.escalated(f"root/made-up-{index}", "operators")
        reason = metrics.reasons(f"made_up_{index}")
        metrics.signals.labels(metrics.vsm_ids(f"root/x{index}"), "pain", reason).inc()
    escalated = registry.get_sample_value
    assert escalated("vsm_escalations_total", {"vsm_id": "other", "target": "operators"}) >= 1_000
    samples = [s for m in registry.collect() for s in m.samples]
    assert len(samples) <= 2 * MAX_VSM_IDS + 2 + 10
