"""Beer's measures of one agent, over a sliding window of its command outcomes.

actuality = successful commands per second over the window; capability = allocation / mean
service time (what the slots it holds now could complete per second); potentiality =
max_allocation / mean service time (what it could do with full resources). The service time
is the mean over the window, or the last one measured when the window is empty; before any
command the agent has no measured capability and the indices are None.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vsm.contract.performance import UnitPerformance


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass
class PerformanceMeter:
    window_s: float
    samples: deque[tuple[float, bool, float]] = field(default_factory=deque)
    service_time_s: float | None = None
    succeeded: int = 0
    failed: int = 0

    def record(self, ok: bool, duration_s: float, now: float) -> None:
        self.samples.append((now, ok, max(duration_s, 1e-6)))
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self._prune(now)

    def report(
        self, agent_id: str, agent_type: str, allocation: int, max_allocation: int, now: float
    ) -> UnitPerformance:
        self._prune(now)
        if self.samples:
            self.service_time_s = sum(d for _, _, d in self.samples) / len(self.samples)
        successes = sum(1 for _, ok, _ in self.samples if ok)
        failures = len(self.samples) - successes
        actuality = successes / self.window_s
        per_slot = 1.0 / self.service_time_s if self.service_time_s else 0.0
        capability = allocation * per_slot
        potentiality = max_allocation * per_slot
        return UnitPerformance(
            agent_id=agent_id,
            agent_type=agent_type,
            window_s=self.window_s,
            actuality=actuality,
            capability=capability,
            potentiality=potentiality,
            productivity=ratio(actuality, capability),
            latency=ratio(capability, potentiality),
            performance=ratio(actuality, potentiality),
            succeeded=successes,
            failed=failures,
        )

    def _prune(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.window_s:
            self.samples.popleft()
