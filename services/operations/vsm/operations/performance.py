"""Beer's measures of one agent, over a sliding window of its command outcomes.

actuality = successful commands per second over the window; capability = what it could
complete per second with the resources it holds now (allocation / mean service time, and no
more than its rate limit); potentiality = what it could complete with full resources
(max_allocation / mean service time). Both are bounded by the work offered (commands
arriving per second): an agent cannot achieve more than it is asked to, so a healthy agent
that does all it is asked has performance 1 however lightly loaded, a failing one 0, and a
throttled one shows the throttle as latency (capability / potentiality) below 1. The
service time is the mean over the window, or the last one measured when the window is
empty; with no work offered in the window the indices are None (nothing to judge).
"""

from __future__ import annotations

import zlib
from collections import Counter, deque
from dataclasses import dataclass, field

from vsm.contract.performance import MAX_WORK_KINDS, UnitPerformance


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass
class PerformanceMeter:
    window_s: float
    samples: deque[tuple[float, bool, float]] = field(default_factory=deque)
    kinds: deque[str] = field(default_factory=deque)
    """The kind of each sample (`<command>.<ok|error>`), in step with `samples`."""
    arrivals: deque[float] = field(default_factory=deque)
    service_time_s: float | None = None
    succeeded: int = 0
    failed: int = 0

    def record(self, ok: bool, duration_s: float, now: float, command: str = "command") -> None:
        self.samples.append((now, ok, max(duration_s, 1e-6)))
        self.kinds.append(f"{command}.{'ok' if ok else 'error'}")
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self._prune(now)

    def arrived(self, now: float) -> None:
        self.arrivals.append(now)

    def report(
        self,
        agent_id: str,
        agent_type: str,
        allocation: int,
        max_allocation: int,
        now: float,
        *,
        max_rate_per_s: float | None = None,
    ) -> UnitPerformance:
        self._prune(now)
        if self.samples:
            self.service_time_s = sum(d for _, _, d in self.samples) / len(self.samples)
        successes = sum(1 for _, ok, _ in self.samples if ok)
        failures = len(self.samples) - successes
        actuality = successes / self.window_s
        offered = max(len(self.arrivals), len(self.samples)) / self.window_s
        per_slot = 1.0 / self.service_time_s if self.service_time_s else 0.0
        limit = max_rate_per_s if max_rate_per_s is not None else float("inf")
        capability = min(offered, allocation * per_slot, limit)
        potentiality = min(offered, max_allocation * per_slot)
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
            work=dict(Counter(self.kinds).most_common(MAX_WORK_KINDS)),
        )

    def _prune(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.window_s:
            self.samples.popleft()
            self.kinds.popleft()
        while self.arrivals and self.arrivals[0] < now - self.window_s:
            self.arrivals.popleft()


def report_due(
    report: UnitPerformance, last_sent: UnitPerformance | None, tick: int, every: int
) -> bool:
    """Whether an agent's report goes upward at reporting tick `tick`.

    It goes when it says something the last one sent did not (work done or failed, a measure
    or an index moved); a report equal to the last one goes only once every `every` ticks,
    at a phase of the agent's own (so that many quiet agents do not refresh in the same
    tick). A quiet agent's report says the same thing each interval: sent every interval,
    a thousand idle agents would cost S3, S4 and S5 a message each per interval, yet a
    system that started later (or lost its memory) still learns of them within `every`.
    """
    if last_sent is None or report != last_sent:
        return True
    return (tick + zlib.crc32(report.agent_id.encode())) % max(every, 1) == 0
