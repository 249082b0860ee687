"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> every viable system's S4, the
rules, the outside sources, the amplifier -> HTTP app."""

from __future__ import annotations

import time

from litestar import Litestar

from vsm.contract import topology
from vsm.contract.intelligence import System4Snapshot
from vsm.contract.recursion import MetaSystemQuery, MetaSystemTree
from vsm.intelligence import handlers, journal
from vsm.intelligence.amplifier import Amplifier, create_client
from vsm.intelligence.anomaly import DetectorParams
from vsm.intelligence.environment import Environment, Sightings
from vsm.intelligence.meta_system import NeedParams
from vsm.intelligence.metrics import create_metrics
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.polling import Outside
from vsm.intelligence.rulesets import RuleSets
from vsm.intelligence.scaling import Scaling
from vsm.intelligence.settings import Settings
from vsm.intelligence.sources import vocabulary
from vsm.intelligence.structure import Overload
from vsm.intelligence.system4 import System4
from vsm.intelligence.systems import ViableSystems
from vsm.intelligence.tree import TreeSync
from vsm.intelligence.variety import EventWindow
from vsm.kit.bus import Bus
from vsm.kit.egress import OnDemand
from vsm.kit.journal import StateJournal, service_journal
from vsm.kit.llm import Caller, service_meter
from vsm.kit.runtime import Runtime
from vsm.kit.schedule import Every

SERVICE = "intelligence"
OUTSIDE_TIMEOUT_S = 10.0
"""The egress client's own bound; each source's `timeout_s` is its request's."""
TREE_SYNC_S = 2.0
"""How often S4 asks S5 for the tree of viable systems until it has read it once."""


def build_rulesets(settings: Settings) -> RuleSets:
    return RuleSets(
        limits=settings.rule_limits(),
        vocabulary=vocabulary(list(settings.s4_sources)),
        standing=settings.standing_rules(),
        sources=list(settings.s4_sources),
        root=settings.vsm_id,
    )


def build_systems(settings: Settings, rulesets: RuleSets) -> ViableSystems:
    detector = DetectorParams(
        alpha=settings.anomaly_alpha,
        threshold=settings.anomaly_threshold,
        warmup=settings.anomaly_warmup,
    )

    def make(vsm_id: str, sightings: Sightings) -> System4:
        system = System4(
            vsm_id=vsm_id,
            env=Environment(
                detector=detector,
                window=EventWindow(window_s=settings.variety_window_s),
                max_series=settings.series_per_system,
            ),
            sightings=sightings,
            need_params=NeedParams(threshold=settings.meta_system_threshold),
            scaling=Scaling(settings.scale_params),
            overload=Overload(settings.structure_params),
            judgement=rulesets.judgement(),
        )
        rulesets.resume(system)
        return system

    return ViableSystems(root=settings.vsm_id, make=make)


def build_journal(
    bus: Bus, systems: ViableSystems, rulesets: RuleSets, settings: Settings
) -> StateJournal[System4Snapshot]:
    """S4's decisions, kept in its stream (`journal.py` says what a snapshot holds)."""
    return service_journal(
        settings,
        bus,
        topology.SYSTEM4_JOURNAL,
        System4Snapshot,
        lambda: journal.snapshot_of(systems, rulesets),
    )


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    meter = service_meter(settings, runtime.telemetry.registry, runtime.bus)
    runtime.bus.interface.asks("queen", MetaSystemQuery, MetaSystemTree)
    amplifier = Amplifier(
        None, model=settings.anthropic_model, max_pending=settings.llm_max_pending
    )

    async def open_llm() -> None:
        """The Anthropic client exists only when configured, and only once the service starts."""
        if settings.anthropic_api_key is not None and settings.llm_configured:
            amplifier.client = create_client(
                settings.anthropic_api_key.get_secret_value(),
                settings.anthropic_base_url,
                settings.llm_timeout_s,
                settings.llm_max_retries,
                meter=meter,
                caller=Caller(settings.instance_id, SERVICE, settings.vsm_id),
            )

    rulesets = build_rulesets(settings)
    systems = build_systems(settings, rulesets)
    decisions = build_journal(runtime.bus, systems, rulesets, settings)
    rulesets.keep = decisions.keep

    async def read_journal() -> None:
        """The systems' own rules as they were: none is declared before they are back."""
        await decisions.open(lambda kept: journal.restore(systems, rulesets, kept))

    metrics = create_metrics(runtime.telemetry.registry, systems.__len__)
    s4 = handlers.S4(systems, Outlets(runtime.bus, amplifier), metrics, rulesets)
    periodic = handlers.register(runtime.bus, s4)
    policy = settings.egress_policy()
    outside = Outside(
        list(settings.s4_sources),
        policy,
        OnDemand(policy, OUTSIDE_TIMEOUT_S),
        lambda source, readings: handlers.outside(s4, source, readings, time.time()),
        metrics.polled,
    )
    rulesets.polls = outside.states
    schedules = (
        Every("scheduled-scan", settings.scan_interval_s, periodic.scan),
        Every("readiness-report", settings.readiness_interval_s, periodic.readiness),
        Every("rules", settings.rule_tick_s, periodic.judge),
        Every("tree-sync", TREE_SYNC_S, TreeSync(runtime.bus, systems).once),
        *outside.schedules(),
    )
    runtime.on_start(read_journal)
    runtime.on_start(open_llm)
    for schedule in schedules:
        runtime.on_start(schedule.start)
        runtime.on_stop(schedule.stop)
    runtime.on_stop(amplifier.close)
    runtime.on_stop(outside.close)
    runtime.health.add_details(amplifier.details)
    return runtime.http_app()
