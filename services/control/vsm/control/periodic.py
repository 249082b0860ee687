"""S3's own rhythm: release what damping held back, report headroom, audit sporadically."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from datetime import datetime

from vsm.contract.control import System3Snapshot
from vsm.control.audit import sample
from vsm.control.auditor import audit_agents
from vsm.control.outlets import Outlets
from vsm.control.reports import audit_report, headroom_of, llm_spend
from vsm.control.system3 import System3
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal


class Periodic:
    def __init__(
        self,
        bus: Bus,
        s3: System3,
        out: Outlets,
        journal: StateJournal[System3Snapshot],
        clock: Callable[[], datetime],
        *,
        audit_sample: int,
        audit_timeout_s: float,
        headroom_refresh_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.bus = bus
        self.s3 = s3
        self.out = out
        self.journal = journal
        self.clock = clock
        self.audit_sample = audit_sample
        self.audit_timeout_s = audit_timeout_s
        self.rng = rng or random.Random()  # noqa: S311 - sampling, not secrets
        self.headroom_refresh_s = headroom_refresh_s
        self.reported: dict[str, tuple[Hashable, float]] = {}
        """Per system, what S3 was like when its headroom was last reported, and when."""

    async def release(self) -> None:
        """Apply what ended cool-downs held back; lift throttles whose time is up."""
        await self.journal.opened.wait()
        changes = self.s3.tick(self.clock())
        if changes or self.journal.pending:
            await self.journal.keep()
        await self.out.changed(changes)

    async def headroom(self) -> None:
        """Each viable system's unallocated share of its budget, for S5's viability: looked
        at (a walk over the system's accounts) and reported when S3 handled something since
        the last report, or when `headroom_refresh_s` passed; an idle S3 does neither."""
        now = time.monotonic()
        seen = (self.s3.stirs, self.journal.written, self.journal.pending, self.s3.today().day)
        for vsm_id in sorted(self.s3.ledger.systems):
            last = self.reported.get(vsm_id)
            if last is not None and last[0] == seen and now - last[1] < self.headroom_refresh_s:
                continue
            llm = llm_spend(self.s3, vsm_id)
            await self.out.headroom(vsm_id, headroom_of(self.s3, vsm_id), llm.headroom_usd)
            self.reported[vsm_id] = (seen, now)
        for gone in self.reported.keys() - self.s3.ledger.systems.keys():
            del self.reported[gone]

    async def audit(self) -> None:
        """A sporadic S3* audit: a small random sample of each system's agents."""
        for vsm_id, system in sorted(self.s3.ledger.systems.items()):
            if not system.accounts:
                continue
            started = self.clock()
            chosen = sample(sorted(system.accounts), self.audit_sample, self.rng)
            answers = await audit_agents(self.bus, chosen, "resource_audit", self.audit_timeout_s)
            findings = audit_report(
                self.s3,
                vsm_id,
                answers,
                trigger="scheduled",
                audit_type="resource_audit",
                started_at=started,
                timeout_s=self.audit_timeout_s,
            )
            await self.out.audited(findings, vsm_id, None)
