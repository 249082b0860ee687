"""What S4 counts: the viable systems it keeps, messages about systems it does not know, rule
firings and the polls of its outside sources. Labels are bounded: message types S4 takes,
the four outcomes of a rule, the operator's sources (at most 32) and a fixed list of
outcomes of a poll."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class Metrics:
    systems: Gauge
    unknown_system: Counter
    rule_firings: Counter
    source_polls: Counter

    def polled(self, source: str, outcome: str) -> None:
        self.source_polls.labels(source, outcome).inc()


def create_metrics(registry: CollectorRegistry, systems: Callable[[], int]) -> Metrics:
    kept = Gauge(
        "vsm_s4_systems", "Viable systems S4 keeps a state for (root and children).", [],
        registry=registry,
    )  # fmt: skip
    kept.set_function(lambda: float(systems()))
    return Metrics(
        systems=kept,
        unknown_system=Counter(
            "vsm_s4_unknown_system",
            "Messages naming a viable system S4 does not know, skipped.",
            ["message"],
            registry=registry,
        ),
        rule_firings=Counter(
            "vsm_s4_rule_firings", "Rule firings, by outcome.", ["outcome"], registry=registry
        ),
        source_polls=Counter(
            "vsm_s4_source_polls",
            "Polls of outside sources, by outcome (`ok` or why not).",
            ["source", "outcome"],
            registry=registry,
        ),
    )
