"""Wiring: Settings -> Runtime -> clients (egress, metered Anthropic) -> S1 (registry, agents)
-> app."""

from __future__ import annotations

import time

from litestar import Litestar

from vsm.kit.egress import OnDemand
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm, service_meter
from vsm.kit.runtime import Runtime
from vsm.operations import handlers
from vsm.operations.agents.base import Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.host import AgentHost
from vsm.operations.journal import RegistryJournal
from vsm.operations.membership import Membership
from vsm.operations.metrics import create_metrics
from vsm.operations.settings import Settings
from vsm.operations.system1 import System1
from vsm.operations.wiring import declare_shared

SERVICE = "operations"


def anthropic_client(settings: Settings, meter: LlmMeter) -> MeteredLlm | None:
    """The one Anthropic client, metered, or None without a key (llm_workers then answer an
    error). Each agent is charged for its own calls (`Resources.charged_to`).

    The SDK's own retries are off: `llm_calls` retries with an explicit deadline instead.
    """
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
    if not key:
        return None
    from anthropic import AsyncAnthropic  # the SDK only with an LLM configured

    client = AsyncAnthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=0,
        timeout=settings.llm_request_timeout_s,
    )
    return MeteredLlm(client, meter, Caller(settings.instance_id, SERVICE, settings.vsm_id))


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    bus = runtime.bus
    state: dict[str, object] = {}
    egress = settings.egress_policy()
    meter = service_meter(settings, runtime.telemetry.registry, bus)

    async def start() -> None:
        http = OnDemand(egress, settings.http_timeout_s)  # made on an agent's first call out
        resources = Resources(
            outbound=Outbound(http, egress, metrics.refused),
            llm=anthropic_client(settings, meter),
            llm_retry_deadline_s=settings.llm_retry_deadline_s,
        )
        host.resources = resources
        state["http"], state["llm"] = http, resources.llm
        await declare_shared(bus, settings.s1_partitions)
        await membership.start()
        await journal.start(settings.registry_replay_timeout_s)
        await s1.caught_up()
        await host.consume_partitions()
        host.start_reporting()

    async def stop() -> None:
        await membership.stop()
        await journal.stop()
        await host.stop()
        llm = state.get("llm")
        if isinstance(llm, MeteredLlm):
            await llm.close()
        http = state.get("http")
        if isinstance(http, OnDemand):
            await http.aclose()

    host = AgentHost(
        bus,
        runtime.direct,
        None,
        settings.performance_interval_s,
        settings.instance_id,
        refresh_s=settings.performance_refresh_s,
        partitions=settings.s1_partitions,
        placement_ttl_s=max(5 * settings.health_interval, 10.0),
        placement_fresh_s=2.5 * settings.health_interval,
    )
    s1 = System1(bus, host, egress, settings.agents_per_system)
    host.metrics = metrics = create_metrics(runtime.telemetry.registry, s1.registry)
    journal = RegistryJournal(
        bus,
        settings.instance_id,
        s1.apply,
        s1.snapshot,
        s1.restore,
        snapshot_every=settings.vsm_log_snapshot_every,
        snapshot_interval_s=settings.vsm_log_snapshot_interval_s,
        items=lambda: s1.registry.live,
    )
    handlers.register(bus, s1, settings.registry_replay_timeout_s)
    runtime.on_start(start)
    runtime.on_stop(stop)
    membership = Membership(bus, host, s1.registry)
    runtime.health.add_details(
        lambda: {
            "agents": len(host.agents),
            "ready": s1.ready.is_set(),
            "partitions_ready": bool(host.lanes),
            "partitions_owned": len(host.placement.owned(time.monotonic())),
        }
    )
    return runtime.http_app()
