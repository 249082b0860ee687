"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> S5 state -> handlers -> HTTP app."""

from __future__ import annotations

from litestar import Litestar

from vsm.contract import topology
from vsm.contract.control import CarveBudget, ReleaseBudget, System3State
from vsm.contract.operations import AgentList, RehomeAgents
from vsm.contract.recursion import PolicyDirective, meta_queue
from vsm.contract.system5 import System5Snapshot
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal, service_journal
from vsm.kit.llm import Caller, service_meter
from vsm.kit.runtime import Runtime
from vsm.queen import handlers, matters
from vsm.queen.algedonic import Thresholds
from vsm.queen.approvals import Desk
from vsm.queen.delegations import Delegations
from vsm.queen.interventions import EscalationRules
from vsm.queen.journal import PolicyJournal
from vsm.queen.llm import create_proposer
from vsm.queen.meta import MetaTree
from vsm.queen.metrics import create_metrics
from vsm.queen.monitor import Monitor
from vsm.queen.outlets import Outlets
from vsm.queen.proposals import Proposals
from vsm.queen.recursion import MetaSystems
from vsm.queen.settings import Settings
from vsm.queen.structure import Structure
from vsm.queen.system5 import System5
from vsm.queen.trail import Trail
from vsm.queen.trail_reader import TRAIL_ENTRIES, TrailReader

SERVICE = "queen"


def build_system5(settings: Settings) -> System5:
    return System5(
        thresholds=Thresholds(
            half_life_s=settings.algedonic_half_life_s,
            intervene_at=settings.pain_threshold,
            resolve_below=settings.pain_resolved_below,
            window=settings.pain_window,
        ),
        escalation=EscalationRules(
            deadline_s=settings.escalation_deadline_s,
            max_levels=settings.escalation_max_levels,
        ),
        freshness_s=settings.viability_freshness_s,
        viable_above=settings.viability_threshold,
    )


def build_matters(
    bus: Bus, s5: System5, desk: Desk, settings: Settings
) -> StateJournal[System5Snapshot]:
    """S5's interventions and approvals, kept in its stream (`matters.py` says what)."""
    return service_journal(
        settings,
        bus,
        topology.SYSTEM5_JOURNAL,
        System5Snapshot,
        lambda: matters.snapshot_of(s5, desk),
    )


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    interface = runtime.bus.interface
    interface.receives(meta_queue("{vsm_id}"), PolicyDirective)
    interface.receives(topology.TRAIL, *TRAIL_ENTRIES)
    interface.asks("control", CarveBudget, System3State)
    interface.asks("control", ReleaseBudget, System3State)
    s5 = build_system5(settings)
    metrics = create_metrics(runtime.telemetry.registry)
    s5.store.max_document_bytes = settings.policy_max_bytes
    s5.store.keep = settings.policy_versions_kept
    tree = MetaTree(
        root=settings.vsm_id,
        max_depth=settings.meta_max_depth,
        max_children=settings.meta_max_children,
        max_total=settings.meta_max_total,
    )
    journal = PolicyJournal(
        runtime.bus,
        s5.store,
        tree,
        metrics,
        settings.instance_id,
        snapshot_every=settings.vsm_log_snapshot_every,
        snapshot_interval_s=settings.vsm_log_snapshot_interval_s,
    )
    meta = MetaSystems(runtime.bus, s5, journal, tree, settings.parent_namespace)
    trail = Trail()
    trail_reader = TrailReader(runtime.bus, trail)
    key = settings.anthropic_api_key
    proposer = create_proposer(
        key.get_secret_value() if key else None,
        settings.anthropic_base_url,
        settings.anthropic_model,
        settings.llm_timeout_s,
        settings.llm_max_retries,
        meter=service_meter(settings, runtime.telemetry.registry, runtime.bus),
        caller=Caller(settings.instance_id, SERVICE, settings.vsm_id),
    )
    llm = proposer.source if proposer else "not configured (rules only)"
    outlets = Outlets(runtime.bus, s5, journal, metrics, proposer)
    desk = Desk(max_pending=settings.approval_max_pending)
    proposals = Proposals(runtime.bus, journal, desk)
    kept = build_matters(runtime.bus, s5, desk, settings)
    outlets.matters, proposals.keep, proposals.restored = kept, kept.keep, outlets.restored
    delegations = Delegations(
        idle_s=settings.structure_idle_s, max_per_hour=settings.structure_max_per_hour
    )
    structure = Structure(runtime.bus, journal, meta, delegations)
    handlers.register(outlets, meta, proposals, trail, llm, grown=structure)
    interface.asks("operations", RehomeAgents, AgentList)
    monitor = Monitor(
        outlets,
        meta,
        proposals,
        settings.monitor_interval_s,
        settings.meta_report_interval_s,
        structure=structure,
    )

    async def open_store() -> None:
        await journal.replay()
        await meta.start()
        await trail_reader.start()

    async def close_llm() -> None:
        if proposer is not None:
            await proposer.llm.close()

    async def read_matters() -> None:
        """The open interventions and pending approvals as they were, before any signal."""
        await kept.open(lambda snapshot: matters.restore(s5, desk, snapshot))

    runtime.on_start(read_matters)  # first: nothing it holds waits on another start-up step
    runtime.on_start(open_store)
    runtime.on_start(monitor.start)
    runtime.on_stop(close_llm)
    runtime.on_stop(journal.close)
    runtime.on_stop(monitor.stop)
    runtime.on_stop(trail_reader.stop)
    runtime.health.add_details(lambda: {"llm": llm})
    return runtime.http_app()
