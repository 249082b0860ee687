"""Does the environment call for a meta-system? Requisite variety, scored from measured factors.

Ashby's law: a regulator must have as much variety as what it regulates. When the
environment's variety, rate, spread of sources and rate of surprises (anomalies) outgrow what
one level of management absorbs, Beer's answer is recursion: a meta-system that takes part of
that variety on. Each factor is a measurement scaled to 0..1 against a reference; the score
is their weighted sum; the recommendation needs both the score and enough evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vsm.contract.intelligence import MetaSystemNeed, VarietyReport


@dataclass(frozen=True)
class NeedParams:
    reference_types: int = 32
    """Entropy of this many equally frequent types (5 bits) scores variety 1.0."""
    reference_rate: float = 5.0
    """Events per second that score rate 1.0."""
    reference_sources: int = 12
    reference_anomalies: int = 5
    """Anomaly episodes within the window that score 1.0."""
    min_events: int = 30
    """Fewer events than this lower the confidence; below half of it nothing is recommended."""
    threshold: float = 0.6
    weights: dict[str, float] = field(
        default_factory=lambda: {"variety": 0.4, "rate": 0.2, "sources": 0.2, "anomalies": 0.2}
    )


def factors(report: VarietyReport, params: NeedParams) -> dict[str, float]:
    return {
        "variety": min(1.0, report.entropy_bits / math.log2(params.reference_types)),
        "rate": min(1.0, report.event_rate / params.reference_rate),
        "sources": min(1.0, report.distinct_sources / params.reference_sources),
        "anomalies": min(1.0, report.anomalies / params.reference_anomalies),
    }


def meta_system_need(report: VarietyReport, params: NeedParams) -> MetaSystemNeed:
    """The scored recommendation with its factors and the reasons a person can read."""
    measured = {name: round(value, 4) for name, value in factors(report, params).items()}
    total = sum(params.weights.values())
    score = round(sum(params.weights[n] * measured[n] for n in measured) / total, 4)
    confidence = round(min(1.0, report.events / params.min_events), 4)
    enough = report.events * 2 >= params.min_events
    recommended = enough and score >= params.threshold
    return MetaSystemNeed(
        recommended=recommended,
        score=score,
        threshold=params.threshold,
        confidence=confidence,
        factors=measured,
        weights=dict(params.weights),
        reasons=reasons(report, measured, score, params, enough=enough),
        variety=report,
    )


def reasons(
    report: VarietyReport,
    measured: dict[str, float],
    score: float,
    params: NeedParams,
    *,
    enough: bool,
) -> list[str]:
    said = [
        f"{report.distinct_types} event types, {report.entropy_bits:.2f} bits of variety "
        f"(evenness {report.normalised_entropy:.2f}) from {report.distinct_sources} sources",
        f"{report.event_rate:.2f} events/s and {report.anomalies} anomalies "
        f"in the last {report.window_s:g}s",
    ]
    strongest = max(measured, key=lambda n: params.weights[n] * measured[n])
    if not enough:
        said.append(f"too little evidence: {report.events} events (need {params.min_events})")
    elif score >= params.threshold:
        said.append(
            f"score {score:.2f} >= {params.threshold:.2f}: environmental variety exceeds "
            f"what one level absorbs (strongest factor: {strongest}); recommend a meta-system"
        )
    else:
        said.append(f"score {score:.2f} < {params.threshold:.2f}: the present structure copes")
    return said
