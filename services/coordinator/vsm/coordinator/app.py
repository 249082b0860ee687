"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> System 2, dispatcher -> HTTP app."""

import time

from litestar import Litestar

from vsm.contract import topology
from vsm.contract.coordination import System2Snapshot, WorkItem
from vsm.contract.operations import (
    AgentCommand,
    AgentDescription,
    AgentList,
    CommandResult,
    GetAgent,
    ListAgents,
    command_key,
)
from vsm.coordinator import handlers, journal
from vsm.coordinator.directory import Directory
from vsm.coordinator.dispatcher import Dispatcher
from vsm.coordinator.holding import Holding
from vsm.coordinator.metrics import create_metrics
from vsm.coordinator.outlets import Outlets
from vsm.coordinator.settings import Settings
from vsm.coordinator.system2 import Params, System2
from vsm.kit.bus import Bus
from vsm.kit.journal import StateJournal, service_journal
from vsm.kit.runtime import Runtime
from vsm.kit.schedule import Every

SERVICE = "coordinator"


def build_system2(settings: Settings) -> System2:
    return System2(
        Params(
            starvation_s=settings.starvation_s,
            window_s=settings.oscillation_window_s,
            max_reversals=settings.oscillation_max_reversals,
            cooldown_s=settings.damping_cooldown_s,
            note_rate_per_s=settings.note_rate_per_s,
        )
    )


def build_journal(bus: Bus, s2: System2, settings: Settings) -> StateJournal[System2Snapshot]:
    """S2's lane weights and damping, kept in its stream (`journal.py` says what they hold)."""
    return service_journal(
        settings, bus, topology.SYSTEM2_JOURNAL, System2Snapshot, lambda: journal.snapshot_of(s2)
    )


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    interface = runtime.bus.interface
    interface.receives(topology.SYSTEM2_WORK, WorkItem)
    interface.answers(topology.SYSTEM2_WORK, CommandResult)
    interface.sends(
        topology.S1_COMMANDS,
        AgentCommand,
        routing_key=command_key("{agent_type}", "{agent_id}", "{command}"),
        replies=(CommandResult,),
    )
    interface.asks("operations", ListAgents, AgentList)
    interface.asks("operations", GetAgent, AgentDescription)
    bus = runtime.bus
    metrics = create_metrics(runtime.telemetry.registry)
    s2 = build_system2(settings)
    directory = Directory(bus, s2.fleet, settings.registry_retry_s)
    decisions = build_journal(bus, s2, settings)

    async def read_journal() -> None:
        """S2's lanes and damping as they were: nothing is handled before they are back."""
        await decisions.open(lambda kept: journal.restore(s2, kept, time.monotonic()))

    dispatcher = Dispatcher(
        bus,
        s2,
        directory,
        metrics,
        Holding(bus, settings.work_prefetch),
        journal=decisions,
        timeout_s=settings.dispatch_timeout_s,
        grace_s=settings.shutdown_grace_s,
    )
    outlets = Outlets(bus, metrics, settings.oscillation_window_s)
    refresh_s = settings.oscillation_refresh_s or 12 * settings.oscillation_interval_s
    report = handlers.register(
        bus, s2, dispatcher, directory, outlets, journal=decisions, refresh_s=refresh_s
    )
    reporting = Every("oscillation-report", settings.oscillation_interval_s, report)
    runtime.on_start(read_journal)
    runtime.on_start(dispatcher.start)
    runtime.on_start(reporting.start)
    runtime.on_stop(dispatcher.stop)
    runtime.on_stop(reporting.stop)
    runtime.health.add_details(lambda: {"held": len(dispatcher.holding.items)})
    return runtime.http_app()
