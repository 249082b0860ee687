"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> System 3 -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.contract import topology
from vsm.contract.control import System3Snapshot
from vsm.contract.operations import (
    AgentDescription,
    AgentList,
    AuditReport,
    AuditRequest,
    ListAgents,
    SpawnAgent,
    TerminateAgent,
    audit_key,
)
from vsm.control import handlers, journal
from vsm.control.adapter import Adapter
from vsm.control.adjustments import Breaker
from vsm.control.ledger import Ledger
from vsm.control.metrics import create_metrics
from vsm.control.outlets import Outlets
from vsm.control.periodic import Periodic
from vsm.control.quotas import AdaptationQuota
from vsm.control.registry import RegistryFollower
from vsm.control.settings import Settings
from vsm.control.system3 import System3
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal, service_journal
from vsm.kit.runtime import Runtime
from vsm.kit.schedule import Every

SERVICE = "control"


def build_system3(settings: Settings) -> System3:
    ledger = Ledger(
        settings.default_budget,
        agent_memory_mb=settings.agent_memory_mb,
        minimums=settings.budget_minimums,
    )
    ledger.system(settings.vsm_id)  # its own system is always reported, agents or not
    return System3(ledger)


def build_adapter(bus: Bus, s3: System3, out: Outlets, settings: Settings) -> Adapter:
    quota = AdaptationQuota(settings.adaptation_quotas)
    return Adapter(bus, s3, out, quota, Breaker(settings.isolation_probe_s), handlers.now_utc)


def build_journal(bus: Bus, s3: System3, settings: Settings) -> StateJournal[System3Snapshot]:
    """S3's decisions, kept in its stream (`journal.py` says what a snapshot holds)."""
    return service_journal(
        settings, bus, topology.SYSTEM3_JOURNAL, System3Snapshot, lambda: journal.snapshot_of(s3)
    )


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    runtime.bus.interface.asks("operations", ListAgents, AgentList)
    runtime.bus.interface.asks("operations", SpawnAgent, AgentDescription)
    runtime.bus.interface.asks("operations", TerminateAgent, AgentDescription)
    runtime.bus.interface.sends(
        topology.S1_COMMANDS,
        AuditRequest,
        routing_key=audit_key("{agent_id}"),
        replies=(AuditReport,),
    )
    s3 = build_system3(settings)
    out = Outlets(runtime.bus, create_metrics(runtime.telemetry.registry))
    adapter = build_adapter(runtime.bus, s3, out, settings)
    decisions = build_journal(runtime.bus, s3, settings)

    async def probe() -> None:
        """Readmit isolated agents on probation; their grants are kept at the release tick
        (a tick that moved none has nothing to keep: an idle S3 writes no snapshot)."""
        if await adapter.probe():
            decisions.later()

    async def read_journal() -> None:
        """S3's decisions as they were: nothing is handled before they are back."""
        await decisions.open(lambda kept: journal.restore(s3, kept))
        s3.ledger.system(settings.vsm_id)

    handlers.register(runtime.bus, s3, out, adapter, decisions)
    periodic = Periodic(
        runtime.bus,
        s3,
        out,
        decisions,
        handlers.now_utc,
        audit_sample=settings.audit_sample,
        audit_timeout_s=settings.audit_timeout_s,
        headroom_refresh_s=settings.headroom_refresh_s or 12 * settings.headroom_interval_s,
    )
    follower = RegistryFollower(runtime.bus, s3, out, decisions, settings.registry_retry_s)
    schedules = (
        Every("s3-release", settings.release_interval_s, periodic.release),
        Every("s3-headroom", settings.headroom_interval_s, periodic.headroom),
        Every("s3-isolation-probe", settings.isolation_probe_s / 4, probe),
        Every(
            "s3-sporadic-audit",
            settings.audit_interval_s,
            periodic.audit,
            jitter=settings.audit_jitter,
        ),
    )
    runtime.on_start(read_journal)
    runtime.on_start(follower.start)
    runtime.on_stop(follower.stop)
    for schedule in schedules:
        runtime.on_start(schedule.start)
        runtime.on_stop(schedule.stop)
    runtime.health.add_details(
        lambda: {
            "agents": len(s3.ledger.where),
            "systems": len(s3.ledger.systems),
            "listed": follower.listed.is_set(),
        }
    )
    return runtime.http_app()
