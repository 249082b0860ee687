"""S4's AMQP handlers: decode, find the viable system the envelope names, feed its S4,
publish or reply. Nothing else.

Ack policy (the kit's): ack once a handler returns; bad input is dead-lettered with its
reason; an unexpected error is redelivered up to the delivery limit, then dead-lettered. A
broadcast about a system S4 does not know (nobody spawned it) is counted and skipped; a
request about one is refused `meta_system_not_found`; neither creates anything.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.coordination import QueuePressure
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused, Unprocessable
from vsm.contract.health import HealthReport
from vsm.contract.intelligence import (
    MetaSystemNeedQuery,
    Observation,
    ScanRequest,
    System4Rules,
    System4StatusQuery,
)
from vsm.contract.operations import CommandResult
from vsm.contract.performance import UnitPerformance
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned
from vsm.contract.rules import Fact
from vsm.contract.system5 import ProposalVerdict
from vsm.intelligence import environment as env
from vsm.intelligence import scaling
from vsm.intelligence.anomaly import Anomaly
from vsm.intelligence.judgement import Said
from vsm.intelligence.metrics import Metrics
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.rulesets import RuleSets
from vsm.intelligence.sources import SourceConfig, fact_of
from vsm.intelligence.system4 import System4, Trigger
from vsm.intelligence.systems import ViableSystems
from vsm.kit.bus import Bus

Clock = Callable[[], float]
INTAKE = topology.SYSTEM4_INTELLIGENCE
REQUESTS = topology.requests_queue("intelligence")


class Periodic(NamedTuple):
    """The jobs the app schedules: scans, readiness reports and rules judged as time passes."""

    scan: Callable[[], Awaitable[None]]
    readiness: Callable[[], Awaitable[None]]
    judge: Callable[[], Awaitable[None]]


class S4(NamedTuple):
    """What the handlers work with: every system's S4, how to speak, what to count."""

    systems: ViableSystems
    out: Outlets
    metrics: Metrics
    rulesets: RuleSets


def outcome_of(message: Said) -> str:
    if isinstance(message, AlgedonicSignal):
        return message.kind
    return "observe" if isinstance(message, Observation) else "alert"


async def speak(s4: S4, system: System4, said: list[Said], cause: Envelope[Any] | None) -> None:
    """Publish what the system's rules said, each counted by its outcome."""
    for message in said:
        s4.metrics.rule_firings.labels(outcome_of(message)).inc()
        await s4.out.said(message, system.vsm_id, cause)


async def take(
    s4: S4, system: System4, found: list[Anomaly], fact: Fact, cause: Envelope[Any] | None
) -> None:
    """Alert on the anomalies a fact revealed, then let the rules judge it."""
    for anomaly in found:
        await s4.out.alert(system.anomaly_alert(anomaly), cause, system.vsm_id)
    await speak(s4, system, system.judge(fact), cause)


async def outside(s4: S4, source: SourceConfig, readings: dict[str, float], now: float) -> None:
    """A source's readings, into the environment of the system it serves (if that exists)."""
    system = s4.systems.get(source.vsm_id or s4.systems.root)
    if system is None:
        s4.metrics.unknown_system.labels("source").inc()
        return
    fact = fact_of(source, readings, now)
    series = {name.removeprefix(f"{source.name}."): v for name, v in readings.items()}
    await take(s4, system, env.record_fact(system.env, fact, series), fact, None)


def register(bus: Bus, s4: S4, clock: Clock = time.time) -> Periodic:
    systems, out = s4.systems, s4.out
    register_environment(bus, s4, clock)
    register_structure(bus, s4)

    async def scan(
        system: System4, trigger: Trigger, reason: str, cause: Envelope[Any] | None
    ) -> Any:
        now = clock()
        result, alerts = system.scan(now, trigger, reason)
        sent = await out.scan(result, cause, system.vsm_id)
        for alert in alerts:
            await out.alert(alert, sent)
        await speak(s4, system, system.judge_scan(result, now), sent)
        regrow = system.structure(result, now)
        if regrow is not None:
            await out.proposal(regrow, sent)
        return result

    @bus.handle(INTAKE, ScanRequest)
    async def on_scan_request(envelope: Envelope[ScanRequest]) -> None:
        await scan(required(systems, envelope), "requested", envelope.data.reason, envelope)

    @bus.handle(INTAKE, AdaptationRequest)
    async def on_adaptation_request(envelope: Envelope[AdaptationRequest]) -> None:
        proposal = required(systems, envelope).propose(envelope.data, clock())
        await out.proposal(proposal, envelope)

    register_requests(bus, s4, scan, clock)
    return periodic(s4, scan, clock)


def register_structure(bus: Bus, s4: S4) -> None:
    """S4 keeps a system of its own for the root and for each child S5 spawns, until retired."""
    systems = s4.systems

    @bus.handle(INTAKE, MetaSystemSpawned)
    async def on_spawned(envelope: Envelope[MetaSystemSpawned]) -> None:
        systems.spawned(envelope.data.meta_system.vsm_id)

    @bus.handle(INTAKE, MetaSystemRetired)
    async def on_retired(envelope: Envelope[MetaSystemRetired]) -> None:
        """The system goes, and its rules with it (kept ones too: a child of the same name
        spawned later starts without them)."""
        systems.retired(envelope.data.vsm_id)
        s4.rulesets.kept.pop(envelope.data.vsm_id, None)
        await s4.rulesets.kept_now()


def periodic(s4: S4, scan: Scan, clock: Clock) -> Periodic:
    """S4's clocks: scans, readiness reports and judgements over time, for every system."""
    systems, out = s4.systems, s4.out

    async def scheduled_scan() -> None:
        for system in systems:
            await scan(system, "scheduled", "scheduled", None)

    async def readiness_report() -> None:
        for system in systems:
            await out.readiness_report(system.readiness(clock()), system.vsm_id)

    async def judge_time() -> None:
        now = clock()
        for system in systems:
            await speak(s4, system, system.judge_time(now), None)

    return Periodic(scan=scheduled_scan, readiness=readiness_report, judge=judge_time)


def seen_in(s4: S4, envelope: Envelope[Any]) -> System4 | None:
    """The system a message S4 sees is about; a message about no known system is counted."""
    found = s4.systems.get(envelope.vsm_id)
    if found is None:
        s4.metrics.unknown_system.labels(envelope.type).inc()
    return found


def register_environment(bus: Bus, s4: S4, clock: Clock) -> None:
    """What S4 sees: each message, into the environment of the system its envelope names."""
    register_sightings(bus, s4, clock)

    @bus.handle(INTAKE, Observation)
    async def on_observation(envelope: Envelope[Observation]) -> None:
        if (system := seen_in(s4, envelope)) is not None:
            seen, now = envelope.data, clock()
            found = env.record_observation(system.env, seen, now)
            await take(s4, system, found, env.observation_fact(seen, now), envelope)

    @bus.handle(INTAKE, UnitPerformance)
    async def on_performance(envelope: Envelope[UnitPerformance]) -> None:
        if (system := seen_in(s4, envelope)) is not None:
            report, now = envelope.data, clock()
            found = env.record_performance(system.env, report, now)
            await take(s4, system, found, env.performance_fact(report, now), envelope)

    @bus.handle(INTAKE, AlgedonicSignal)
    async def on_algedonic(envelope: Envelope[AlgedonicSignal]) -> None:
        if (system := seen_in(s4, envelope)) is not None:
            signal, now = envelope.data, clock()
            found = env.record_algedonic(system.env, signal, now)
            await take(s4, system, found, env.algedonic_fact(signal, now), envelope)

    @bus.handle(INTAKE, CommandResult)
    async def on_result(envelope: Envelope[CommandResult]) -> None:
        if (system := seen_in(s4, envelope)) is not None:
            result, now = envelope.data, clock()
            found = env.record_result(system.env, result, now)
            await take(s4, system, found, env.result_fact(result, now), envelope)

    @bus.handle(INTAKE, QueuePressure)
    async def on_pressure(envelope: Envelope[QueuePressure]) -> None:
        """Sustained queueing on an agent type (or its end): an expansive proposal to S5."""
        if (system := seen_in(s4, envelope)) is not None:
            for rescale in system.scaling.read(envelope.data, clock()):
                await s4.out.proposal(scaling.proposal(rescale), envelope)


def register_sightings(bus: Bus, s4: S4, clock: Clock) -> None:
    """What S4 learns of itself and the services: S5's verdicts on its proposals, heartbeats."""

    @bus.handle(INTAKE, ProposalVerdict)
    async def on_verdict(envelope: Envelope[ProposalVerdict]) -> None:
        if (system := seen_in(s4, envelope)) is not None:
            system.record_verdict(envelope.data.accepted)

    @bus.handle(topology.SYSTEM4_HEALTH, HealthReport)
    async def on_health(envelope: Envelope[HealthReport]) -> None:
        changed = env.record_health(s4.systems.sightings, envelope.data, clock())
        if changed is not None and (system := seen_in(s4, envelope)) is not None:
            await take(s4, system, env.record_fact(system.env, changed, {}), changed, envelope)


def required(systems: ViableSystems, envelope: Envelope[Any]) -> System4:
    """The system a message to S4 is for; a message for no known system is dead-lettered."""
    found = systems.get(envelope.vsm_id)
    if found is None:
        raise Unprocessable("meta_system_not_found", f"no viable system {envelope.vsm_id!r}")
    return found


def known(systems: ViableSystems, vsm_id: str) -> System4:
    """The system a request is about; `meta_system_not_found` refuses one S4 does not keep."""
    found = systems.get(vsm_id)
    if found is None:
        raise Refused(
            "meta_system_not_found",
            f"no viable system {vsm_id!r}: S4 keeps one for the root and each child S5 spawned",
        )
    return found


Scan = Callable[[System4, Trigger, str, Envelope[Any] | None], Awaitable[Any]]


def register_requests(bus: Bus, s4: S4, scan: Scan, clock: Clock) -> None:
    """Questions about one viable system, answered from its S4 (or refused: unknown)."""
    systems, out, rulesets = s4.systems, s4.out, s4.rulesets

    @bus.handle(REQUESTS, ScanRequest)
    async def on_scan(envelope: Envelope[ScanRequest]) -> RabbitResponse:
        system = known(systems, envelope.vsm_id)
        return bus.reply(
            await scan(system, "requested", envelope.data.reason, envelope), cause=envelope
        )

    @bus.handle(REQUESTS, MetaSystemNeedQuery)
    async def on_meta_system_need(envelope: Envelope[MetaSystemNeedQuery]) -> RabbitResponse:
        need = known(systems, envelope.vsm_id).need(clock())
        return bus.reply(need, cause=envelope)

    @bus.handle(REQUESTS, System4StatusQuery)
    async def on_status(envelope: Envelope[System4StatusQuery]) -> RabbitResponse:
        system = known(systems, envelope.vsm_id)
        status = rulesets.status(system, clock(), llm_enabled=out.amplifier.enabled)
        return bus.reply(status, cause=envelope)

    @bus.handle(REQUESTS, System4Rules)
    async def on_rules(envelope: Envelope[System4Rules]) -> RabbitResponse:
        system = known(systems, envelope.vsm_id)
        invalid = rulesets.adopt(system, envelope.data.rules)
        if invalid is not None:
            return bus.reply(invalid, cause=envelope)
        await rulesets.kept_now()
        status = rulesets.status(system, clock(), llm_enabled=out.amplifier.enabled)
        return bus.reply(status, cause=envelope)
