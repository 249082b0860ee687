"""S5's own clock: decay the levels, resolve what has subsided, escalate what is overdue,
expire the proposals no person decided in time.

Runs as a background task every `interval_s`; a failing tick (e.g. the broker away) is
logged and the next tick tries again, so an escalation is late rather than lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import structlog

from vsm.kit.labels import OTHER
from vsm.queen.outlets import Outlets
from vsm.queen.proposals import Proposals
from vsm.queen.recursion import MetaSystems
from vsm.queen.structure import Structure

log = structlog.get_logger("vsm.queen.monitor")


async def tick(outlets: Outlets, now: datetime) -> None:
    """One round of S5's own clock (see the module docstring)."""
    s5, metrics = outlets.s5, outlets.metrics
    for resolved in s5.settle(now):
        await outlets.resolve(resolved, now)
    for intervention in list(s5.interventions.values()):
        if intervention.throttled is not None:
            await outlets.lift_throttle(intervention, now)
    for overdue in s5.due(now):
        await outlets.escalate(overdue, now)
    await outlets.keep()  # resolved and forgotten ones
    for vsm_id, feeling in s5.feelings.items():
        if metrics.vsm_ids(vsm_id) == OTHER:  # levels only for the systems labelled by id
            continue
        metrics.pain.labels(vsm_id).set(feeling.pain)
        metrics.pleasure.labels(vsm_id).set(feeling.pleasure)
    for vsm_id in {*s5.feelings, *s5.measured}:
        if metrics.vsm_ids(vsm_id) == OTHER:
            continue
        viability = s5.viability(vsm_id, now)
        metrics.viability_coverage.labels(vsm_id).set(viability.coverage)
        if viability.score is not None:
            metrics.viability.labels(vsm_id).set(viability.score)


class Monitor:
    def __init__(
        self,
        outlets: Outlets,
        meta: MetaSystems,
        proposals: Proposals,
        interval_s: float,
        report_interval_s: float,
        *,
        structure: Structure,
    ) -> None:
        self.outlets = outlets
        self.meta = meta
        self.proposals = proposals
        self.structure = structure
        self.interval_s = interval_s
        self.report_interval_s = report_interval_s
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        await self.outlets.journal.opened.wait()
        last_report = 0.0
        while True:
            now = datetime.now(UTC)
            try:
                await tick(self.outlets, now)
                await self.proposals.expire(now)
                await self.structure.tick()
                if time.monotonic() - last_report >= self.report_interval_s:
                    last_report = time.monotonic()
                    await self.meta.report_up(now)
                    self.count_children()
            except Exception as error:
                log.warning("monitor_tick_failed", error=repr(error))
            await asyncio.sleep(self.interval_s)

    def count_children(self) -> None:
        tree, gauge = self.meta.tree, self.outlets.metrics.meta_systems
        for vsm_id in {tree.root, *tree.systems}:
            gauge.labels(vsm_id).set(len(tree.children_of(vsm_id)))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="s5-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
