"""The logs with snapshots (`vsm.kit.snapshots`): S5's policy log and S1's registry log after
a long history, and the start-up read-back of each, which must be bounded by the live state,
not by the history (target: under 10 s each)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aio_pika
from prometheus_client import CollectorRegistry

from bench import Context, Figures, benchmark
from bench.kit import started
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.operations import REGISTRY_LOG, AgentSpawned, AgentTerminated
from vsm.contract.policy import PolicyChanged, PolicyRecord, ThrottleLimit, ThrottlePolicy
from vsm.kit.egress import EgressPolicy
from vsm.kit.journal import append
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.kit.snapshots import ITEMS_PER_ENTRY
from vsm.operations.journal import RegistryJournal
from vsm.operations.registry import new_agent
from vsm.operations.system1 import System1
from vsm.queen.journal import PolicyJournal
from vsm.queen.meta import MetaTree
from vsm.queen.metrics import create_metrics
from vsm.queen.policies import PolicyStore

REGISTRY_EVENTS = {"full": 1_000_000, "quick": 20_000}
LIVE_AGENTS = {"full": 10_000, "quick": 1_000}
POLICY_VERSIONS = {"full": 100_000, "quick": 5_000}
POLICY_KEYS = 100
"""Viable systems whose throttle policy gets the versions, in turn."""
EVERY = 1000
"""Entries between two snapshots (`VSM_LOG_SNAPSHOT_EVERY`'s default)."""
BATCH = 2000
"""Entries published before waiting for their confirms."""
TARGET_S = 10.0


def _runtime(ctx: Context, namespace: str, service: str) -> Runtime:
    settings = ServiceSettings(
        amqp_url=ctx.url, vsm_namespace=namespace, http_port=0, log_level="WARNING"
    )
    ns = Namespace(namespace)
    queues = [*topology.SHARED_QUEUES, topology.SYSTEM5_POLICIES, REGISTRY_LOG]
    ctx.track(
        queues=[ns.name(n) for q in queues for n in (q.name, q.dead_letter_queue)],
        exchanges=[ns.name(e.name) for e in topology.EXCHANGES],
    )
    return Runtime(service, settings)


async def _write(ctx: Context, stream: str, bodies: Any) -> None:
    """Publish each body (bytes) straight to `stream`, BATCH at a time with confirms."""
    connection = await aio_pika.connect(ctx.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = channel.default_exchange
        batch: list[Any] = []
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            batch.append(exchange.publish(message, routing_key=stream))
            if len(batch) >= BATCH:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)


def _registry_history(total: int, live: int) -> Any:
    """`total` events, spawns and terminations, as (event id, event, JSON) leaving `live`
    agents running: the agents spawned first stay; every later one is terminated right after
    its spawn. The JSON is made from one envelope of each kind with its ids replaced: encoding
    a million envelopes one by one would take longer than writing them."""
    now = datetime.now(UTC)
    agent = new_agent("worker", {}, now)
    spawned = Envelope.wrap(AgentSpawned(agent=agent), source="vsm/bench")
    ended = AgentTerminated(
        agent_id=agent.agent_id, agent_type="worker", reason="bench", terminated_at=now
    )
    terminated = Envelope.wrap(ended, source="vsm/bench")
    templates = {
        "spawned": (spawned.model_dump_json(), spawned.id),
        "terminated": (terminated.model_dump_json(), terminated.id),
    }

    def event(kind: str, n: int) -> tuple[str, Any, bytes]:
        text, envelope_id = templates[kind]
        agent_id, event_id = f"worker-{n:012x}", f"{kind[0]}{n:031x}"
        body = text.replace(agent.agent_id, agent_id).replace(envelope_id, event_id)
        data = (
            AgentSpawned(agent=agent.model_copy(update={"agent_id": agent_id}))
            if kind == "spawned"
            else ended.model_copy(update={"agent_id": agent_id})
        )
        return event_id, data, body.encode()

    for n in range(live):
        yield event("spawned", n)
    for n in range(live, live + (total - live) // 2):
        yield event("spawned", n)
        yield event("terminated", n)


def _system1(bus: Any) -> System1:
    host = SimpleNamespace(report_crash=None)
    return System1(bus, host, EgressPolicy())  # type: ignore[arg-type]


def _registry_journal(service: Runtime, s1: System1) -> RegistryJournal:
    async def apply(event_id: str, event: Any, _: bool) -> None:
        s1.registry.apply(event_id, event)  # no agent host here: the registry alone

    return RegistryJournal(service.bus, "bench", apply, s1.snapshot, s1.restore)


@benchmark("journal.replay", rounds=1, deadline_s=3600)
async def replay(ctx: Context) -> Figures:
    """S1's registry log with REGISTRY_EVENTS events (LIVE_AGENTS running at the end) and S5's
    policy log with POLICY_VERSIONS versions, each with a snapshot every 1,000 entries or as
    many as the state holds items, as its service writes them; then the start-up read-back
    of each by a fresh journal of the service (`RegistryJournal`, `PolicyJournal`):
    `registry_open_s`, `policy_open_s` (target under 10 s), the entries each read after the
    snapshot. `BENCH_REPLAY_SIZE=quick|full`
    picks the sizes whatever `--quick` says."""
    size = "quick" if ctx.quick else "full"
    size = os.environ.get("BENCH_REPLAY_SIZE", size)
    namespace = ctx.namespace
    ns = Namespace(namespace)
    figures: dict[str, float] = {}
    service = _runtime(ctx, namespace, "bench-replay")
    async with started(service):
        # S1: the history, with a snapshot every EVERY events as the replica that wrote
        # them would append (`System1.snapshot`; one writer: it covers all before it).
        writer = _system1(service.bus)
        events = REGISTRY_EVENTS[size]
        stream = ns.name(REGISTRY_LOG.name)
        await service.bus.declare(REGISTRY_LOG)
        started_at = time.perf_counter()
        history = _registry_history(events, LIVE_AGENTS[size])
        snapshots = 0
        every = max(EVERY, LIVE_AGENTS[size] // ITEMS_PER_ENTRY)  # as `SnapshotLog` does
        while chunk := list(itertools.islice(history, every)):
            await _write(ctx, stream, [body for _, _, body in chunk])
            for event_id, event, _ in chunk:
                writer.registry.apply(event_id, event)
                if isinstance(event, AgentTerminated):  # only the running are kept
                    writer.registry.agents.pop(event.agent_id, None)
            writer.registry.applied.clear()
            await append(service.bus, REGISTRY_LOG, writer.snapshot(None))
            snapshots += 1
        figures["registry_write_s"] = time.perf_counter() - started_at
        figures["registry_snapshots"] = snapshots
        figures["registry_snapshot_kb"] = len(writer.snapshot(None).model_dump_json()) / 1024
        reader = _system1(service.bus)
        fresh = _registry_journal(service, reader)
        started_at = time.perf_counter()
        await fresh.start(600)
        figures["registry_open_s"] = time.perf_counter() - started_at
        figures["registry_entries_read"] = fresh.log.read if fresh.log else 0
        await fresh.stop()
        running = len(reader.registry.running())
        assert running == LIVE_AGENTS[size], f"{running} agents read back"

        # S5: its journal writes the versions (published in batches here) and snapshots them.
        store = PolicyStore()
        policies = PolicyJournal(
            service.bus, store, MetaTree(), create_metrics(CollectorRegistry()), "bench"
        )
        await policies.replay()
        versions = POLICY_VERSIONS[size]
        now = datetime.now(UTC)
        stream = ns.name(topology.SYSTEM5_POLICIES.name)
        started_at = time.perf_counter()
        for first in range(0, versions, BATCH):
            records = [
                PolicyRecord(
                    vsm_id=f"root/s{n % POLICY_KEYS}",
                    policy_type="throttle",
                    version=n // POLICY_KEYS + 1,
                    policy=ThrottlePolicy(
                        policy_type="throttle",
                        limits=[ThrottleLimit(target="*", max_rate_per_s=1 + n % 50)],
                    ),
                    source="operator",
                    created_at=now,
                )
                for n in range(first, min(first + BATCH, versions))
            ]
            await _write(
                ctx,
                stream,
                (
                    Envelope.wrap(PolicyChanged(record=r), source="vsm/bench")
                    .model_dump_json()
                    .encode()
                    for r in records
                ),
            )
            # As `PolicyJournal.adopt` does after each publish, a batch at a time: a snapshot
            # must follow every change it holds in the log, so one is due only between two.
            async with policies.log.lock:
                for record in records:
                    store.apply(record)
                policies.log.since += len(records) - 1
                await policies.log.changed()
        figures["policy_write_s"] = time.perf_counter() - started_at
        figures["policy_snapshots"] = policies.log.snapshots
        await policies.close()
        restored = PolicyStore()
        fresh_policies = PolicyJournal(
            service.bus, restored, MetaTree(), create_metrics(CollectorRegistry()), "bench"
        )
        started_at = time.perf_counter()
        await fresh_policies.replay()
        figures["policy_open_s"] = time.perf_counter() - started_at
        figures["policy_entries_read"] = fresh_policies.log.read
        await fresh_policies.close()
        latest = restored.latest("root/s0", "throttle")
        assert latest is not None
        assert latest.version == versions // POLICY_KEYS, latest
    figures["registry_events"] = events
    figures["policy_versions"] = versions
    figures["target_s"] = TARGET_S
    return figures
