"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> System 3 -> handlers -> HTTP app."""

from litestar import Litestar

from vsm.contract.operations import AgentList, AuditReport, AuditRequest, ListAgents, command_queue
from vsm.control import handlers
from vsm.control.ledger import Ledger
from vsm.control.metrics import create_metrics
from vsm.control.outlets import Outlets
from vsm.control.periodic import Periodic
from vsm.control.registry import RegistryFollower
from vsm.control.settings import Settings
from vsm.control.system3 import System3
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


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    runtime.bus.interface.asks("operations", ListAgents, AgentList)
    runtime.bus.interface.sends_to_queue(
        command_queue("{agent_id}"), AuditRequest, replies=(AuditReport,)
    )
    s3 = build_system3(settings)
    out = Outlets(runtime.bus, create_metrics(runtime.telemetry.registry))
    handlers.register(runtime.bus, s3, out)
    periodic = Periodic(
        runtime.bus,
        s3,
        out,
        handlers.now_utc,
        audit_sample=settings.audit_sample,
        audit_timeout_s=settings.audit_timeout_s,
    )
    follower = RegistryFollower(runtime.bus, s3, settings.registry_retry_s)
    schedules = (
        Every("s3-release", settings.release_interval_s, periodic.release),
        Every("s3-headroom", settings.headroom_interval_s, periodic.headroom),
        Every(
            "s3-sporadic-audit",
            settings.audit_interval_s,
            periodic.audit,
            jitter=settings.audit_jitter,
        ),
    )
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
