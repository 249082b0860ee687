"""Wiring: Settings -> Runtime -> clients (egress, metered Anthropic) -> S1 (registry, agents)
-> app. One shape for both kinds of host: operations (the registry's requests, the built-in
types on operations' partitions) and an agent host (`vsm-agent run`: the SDK types it offers,
on their own partitions, the registry followed but never written)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from litestar import Litestar

from vsm.agent import Agent, TypeRegistry, describe, discover
from vsm.contract.agent_types import HOST_SERVICE, AgentTypeManifest, HostRegistered, RegisterHost
from vsm.contract.errors import Refused
from vsm.kit.bus import Bus, RequestFailed
from vsm.kit.egress import OnDemand
from vsm.kit.llm import Caller, LlmMeter, MeteredLlm, service_meter
from vsm.kit.runtime import Runtime
from vsm.operations import handlers
from vsm.operations.agents.base import AgentType, Resources
from vsm.operations.agents.catalog import AGENT_TYPES, built_in_manifests
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.sdk import hosted_type
from vsm.operations.host import AgentHost
from vsm.operations.journal import RegistryJournal
from vsm.operations.membership import Membership
from vsm.operations.metrics import create_metrics
from vsm.operations.offers import HostOffers
from vsm.operations.settings import Settings
from vsm.operations.system1 import System1
from vsm.operations.wiring import declare_pool, declare_shared

SERVICE = "operations"
REGISTER_WITHIN_S = 120.0
"""How long a host keeps asking operations to take its offer before it gives up."""

log = structlog.get_logger("vsm.operations.app")


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


async def register(bus: Bus, instance: str, offers: list[AgentTypeManifest]) -> list[str]:
    """Offer the host's types to operations, waiting for it to answer (it may be starting);
    a refusal (`agent_type_clash`, naming both sources) is raised."""
    deadline = time.monotonic() + REGISTER_WITHIN_S
    while True:
        try:
            reply = await bus.query(
                SERVICE, "register", RegisterHost(instance=instance, offers=offers), HostRegistered
            )
            return reply.accepted
        except RequestFailed as refused:
            log.error("agent_host_refused", code=refused.code, error=refused.message)
            raise Refused(refused.code, refused.message, refused.details) from None
        except Exception as error:
            if time.monotonic() > deadline:
                raise
            log.warning("operations_not_answering", error=repr(error))
            await asyncio.sleep(2.0)


def installed_types() -> list[type[Agent[Any]]]:
    """The SDK types installed packages publish (`vsm.agent_types`), but for those whose
    names the built-in types hold; each one skipped is logged with its package."""
    known = TypeRegistry()
    for manifest in built_in_manifests().values():
        known.register(manifest, "operations (built-in)")
    found = discover(registry=known)
    for problem in found.problems:
        log.warning(
            "agent_type_skipped",
            package=problem.package,
            entry_point=problem.entry_point,
            error=problem.error,
        )
    return [t.agent_class for t in found.types]


def agent_host(
    runtime: Runtime, settings: Settings, kinds: Mapping[str, AgentType], pools: list[str | None]
) -> AgentHost:
    """This process's agents: the `kinds` it runs, served through the partitions of `pools`
    (None: operations' own; a type's name: that type's)."""
    return AgentHost(
        runtime.bus,
        runtime.direct,
        None,
        settings.performance_interval_s,
        settings.instance_id,
        refresh_s=settings.performance_refresh_s,
        partitions=settings.s1_partitions,
        placement_ttl_s=max(5 * settings.health_interval, 10.0),
        placement_fresh_s=2.5 * settings.health_interval,
        kinds=kinds,
        pools=pools,
        type_partitions=settings.s1_type_partitions,
    )


async def offer(bus: Bus, settings: Settings, manifests: list[AgentTypeManifest]) -> None:
    """An agent host's types: their partitions declared, then offered to operations."""
    for manifest in manifests:
        await declare_pool(bus, manifest.name, settings.s1_type_partitions)
    accepted = await register(bus, settings.instance_id, manifests)
    log.info("agent_host_registered", offers=accepted)


def create_app(settings: Settings, offered: Sequence[type[Agent[Any]]] = ()) -> Litestar:
    """operations, or (with `offered`, SDK agent types) an agent host offering them."""
    hosting = bool(offered)
    installed = [] if hosting or not settings.agent_type_entry_points else installed_types()
    sdk_types = {t.name: hosted_type(t) for t in [*offered, *installed]}
    kinds = sdk_types if hosting else {**AGENT_TYPES, **sdk_types}
    manifests = [describe(agent_type) for agent_type in offered]
    runtime = Runtime(HOST_SERVICE if hosting else SERVICE, settings)
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
        if hosting:
            await offer(bus, settings, manifests)
        else:
            await declare_shared(bus, settings.s1_partitions)
        await membership.start()
        await journal.start(settings.registry_replay_timeout_s)
        await s1.caught_up()
        await host.consume_partitions()
        host.start_reporting()

    async def stop() -> None:
        await membership.stop()
        await journal.stop()
        await host.stop(cleanup_s=settings.shutdown_grace_s / 2)
        llm = state.get("llm")
        if isinstance(llm, MeteredLlm):
            await llm.close()
        http = state.get("http")
        if isinstance(http, OnDemand):
            await http.aclose()

    host = agent_host(runtime, settings, kinds, list(kinds) if hosting else [None])
    own = {m.name: m for m in map(describe, installed)}
    offers = HostOffers(host.placement_ttl_s, {**built_in_manifests(), **own}, own)
    s1 = System1(
        bus,
        host,
        egress,
        settings.agents_per_system,
        offers,
        batch=settings.vsm_registry_batch,
        cleans_up=not hosting,
    )
    host.metrics = metrics = create_metrics(runtime.telemetry.registry, s1.registry, host.cleanup)
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
    if hosting:
        bus.interface.asks(SERVICE, RegisterHost, HostRegistered)
    else:
        handlers.register(bus, s1, settings.registry_replay_timeout_s)
    runtime.on_start(start)
    runtime.on_stop(stop)
    membership = Membership(bus, host, s1.registry, offers)
    offers_shown = [manifest.model_dump(mode="json") for manifest in manifests]
    runtime.health.add_details(
        lambda: {
            "agents": len(host.agents),
            "ready": s1.ready.is_set(),
            "partitions_ready": bool(host.lanes),
            "partitions_owned": host.owned(time.monotonic()),
            **({"offers": offers_shown} if hosting else {}),
        }
    )
    return runtime.http_app()
