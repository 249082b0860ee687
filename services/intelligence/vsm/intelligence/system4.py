"""One viable system's S4 as one object over plain data: its environment, its rules, the
tallies, and what S4 says about it.

Handlers feed it and publish what it returns; it does no I/O and takes `now` explicitly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from vsm.contract.adaptation import AdaptationProposal, AdaptationReadiness, AdaptationRequest
from vsm.contract.intelligence import (
    IntelligenceAlert,
    MetaSystemNeed,
    ScanResult,
    SeriesAnomaly,
    System4Status,
)
from vsm.contract.rules import Fact, Firing
from vsm.intelligence import readiness
from vsm.intelligence.anomaly import Anomaly, severity
from vsm.intelligence.environment import Environment, Sightings
from vsm.intelligence.judgement import Judgement, Said, said
from vsm.intelligence.meta_system import NeedParams, meta_system_need
from vsm.intelligence.proposals import propose
from vsm.intelligence.scaling import Scaling
from vsm.intelligence.structure import Overload, busiest_part, proposal
from vsm.intelligence.variety import variety_report

Trigger = Literal["scheduled", "requested"]


def moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


@dataclass
class System4:
    vsm_id: str = "root"
    env: Environment = field(default_factory=Environment)
    sightings: Sightings = field(default_factory=dict)
    """The services' heartbeats, shared with every system of this S4."""
    need_params: NeedParams = field(default_factory=NeedParams)
    judgement: Judgement = field(default_factory=Judgement)
    scaling: Scaling = field(default_factory=Scaling)
    overload: Overload = field(default_factory=Overload)
    alerts_raised: int = 0
    scans: int = 0
    proposals: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0})
    last_scan_at: float | None = None
    variety_alarm: bool = False
    """True while the meta-system need is recommended: one variety alert per crossing."""

    def need(self, now: float) -> MetaSystemNeed:
        return meta_system_need(variety_report(self.env.window, now), self.need_params)

    def readiness(self, now: float) -> AdaptationReadiness:
        measured = readiness.factors(self.env, self.sightings, now)
        return AdaptationReadiness(readiness=readiness.readiness(measured), factors=measured)

    def open_anomalies(self) -> list[SeriesAnomaly]:
        return [
            SeriesAnomaly(series=name, since=moment(s.episode_since), z=round(s.episode_z, 3))
            for name, s in self.env.series.items()
            if s.episode_since is not None
        ]

    def anomaly_alert(self, anomaly: Anomaly) -> IntelligenceAlert:
        self.alerts_raised += 1
        level = severity(anomaly.z, anomaly.threshold)
        direction = "above" if anomaly.z > 0 else "below"
        return IntelligenceAlert(
            alert_id=str(uuid.uuid4()),
            severity=level,
            kind="anomaly",
            summary=(
                f"{anomaly.series} = {anomaly.value:g}, {abs(anomaly.z):.1f} standard "
                f"deviations {direction} its recent mean {anomaly.mean:.3g}"
            ),
            series=anomaly.series,
            source=self.env.series_source.get(anomaly.series),
            evidence=anomaly.evidence(),
            detected_at=moment(anomaly.at),
        )

    def scan(
        self, now: float, trigger: Trigger, reason: str
    ) -> tuple[ScanResult, list[IntelligenceAlert]]:
        """One scan: the picture now, plus a variety alert when the need has just arisen."""
        need = self.need(now)
        ready = self.readiness(now)
        opened = self.open_anomalies()
        self.scans += 1
        self.last_scan_at = now
        findings = [*need.reasons, *(f"open anomaly on {a.series} (z={a.z})" for a in opened)]
        alerts = []
        if need.recommended and not self.variety_alarm:
            alerts.append(self.variety_alert(need, now))
        self.variety_alarm = need.recommended
        result = ScanResult(
            scan_id=str(uuid.uuid4()),
            trigger=trigger,
            reason=reason[:256],
            series=len(self.env.series),
            open_anomalies=opened,
            variety=need.variety,
            meta_system_need=need,
            readiness=ready.readiness,
            readiness_factors=ready.factors,
            findings=findings,
        )
        return result, alerts

    def structure(self, result: ScanResult, now: float) -> AdaptationProposal | None:
        """After a scan: a change of structure, when variety has exceeded capacity for the
        window (see `vsm.intelligence.structure`)."""
        need, part = result.meta_system_need, busiest_part(self.env.window, self.vsm_id)
        since = self.overload.since
        if not self.overload.read(need, part, now) or part is None:
            return None
        self.proposals += 1
        return proposal(self.vsm_id, need, part, now - (since if since is not None else now))

    def variety_alert(self, need: MetaSystemNeed, now: float) -> IntelligenceAlert:
        self.alerts_raised += 1
        return IntelligenceAlert(
            alert_id=str(uuid.uuid4()),
            severity="warning",
            kind="variety",
            summary=need.reasons[-1][:1024],
            evidence={"score": need.score, "factors": need.factors, **need.variety.model_dump()},
            detected_at=moment(now),
        )

    def judge(self, fact: Fact) -> list[Said]:
        """The rules' verdict on one fact: what their firings say."""
        return self.said(self.judgement.observe(fact))

    def judge_scan(self, result: ScanResult, now: float) -> list[Said]:
        """A scan is a fact too (`s4.scan`), so rules can ask whether the need for a
        meta-system is sustained (`min(need.score) over 10m >= 0.6`)."""
        readings = {
            "need.score": result.meta_system_need.score,
            "need.threshold": result.meta_system_need.threshold,
            "variety.entropy_bits": result.variety.entropy_bits,
            "variety.event_rate": result.variety.event_rate,
            "variety.sources": float(result.variety.distinct_sources),
            "anomalies.open": float(len(result.open_anomalies)),
            "readiness": result.readiness,
        }
        return self.judge(Fact(now, "s4.scan", readings, {"source": "s4"}))

    def judge_time(self, now: float) -> list[Said]:
        return self.said(self.judgement.tick(now))

    def said(self, firings: list[Firing]) -> list[Said]:
        messages = []
        for firing in firings:
            self.judgement.firings += 1
            messages.append(said(firing, self.vsm_id, self.judgement.firings))
        self.alerts_raised += sum(isinstance(m, IntelligenceAlert) for m in messages)
        return messages

    def propose(self, request: AdaptationRequest, now: float) -> AdaptationProposal:
        ready = self.readiness(now)
        self.proposals += 1
        return propose(request, ready.readiness, ready.factors, self.need(now))

    def record_verdict(self, accepted: bool) -> None:
        self.verdicts["accepted" if accepted else "rejected"] += 1

    def status(self, now: float, *, llm_enabled: bool) -> System4Status:
        ready = self.readiness(now)
        return System4Status(
            vsm_id=self.vsm_id,
            series=len(self.env.series),
            open_anomalies=self.open_anomalies(),
            alerts_raised=self.alerts_raised,
            scans=self.scans,
            last_scan_at=moment(self.last_scan_at) if self.last_scan_at else None,
            variety=variety_report(self.env.window, now),
            readiness=ready.readiness,
            readiness_factors=ready.factors,
            proposals=self.proposals,
            proposals_accepted=self.verdicts["accepted"],
            proposals_rejected=self.verdicts["rejected"],
            llm="enabled" if llm_enabled else "disabled",
            rules=self.judgement.declared,
            standing_rules=len(self.judgement.standing.rules),
            rule_firings=self.judgement.firings,
        )
