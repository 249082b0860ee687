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

import aiormq
from prometheus_client import CollectorRegistry

from bench import Context, Figures, benchmark
from bench.kit import started
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.operations import REGISTRY_LOG, AgentInfo, AgentSpawned, AgentTerminated
from vsm.contract.policy import PolicyChanged, PolicyRecord, ThrottleLimit, ThrottlePolicy
from vsm.kit.egress import EgressPolicy
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


class Writer:
    """Publishes bodies straight to a stream, BATCH at a time with confirms, on one channel
    of the bare AMQP client (aio-pika's per-message cost would dominate a million)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: Any = None
        self.channel: Any = None
        self.properties = aiormq.spec.Basic.Properties(delivery_mode=2)

    async def __aenter__(self) -> Writer:
        self.connection = await aiormq.connect(self.url)
        self.channel = await self.connection.channel()  # publisher confirms on
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connection.close()

    async def write(self, stream: str, bodies: Any) -> None:
        batch: list[Any] = []
        for body in bodies:
            batch.append(
                self.channel.basic_publish(body, routing_key=stream, properties=self.properties)
            )
            if len(batch) >= BATCH:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)


def _renamed(template: tuple[str, str], envelope_id: str) -> bytes:
    """An envelope's JSON with its id replaced."""
    text, old_id = template
    return text.replace(old_id, envelope_id).encode()


def _registry_history(total: int, live: int, agent: AgentInfo) -> Any:
    """`total` events as (event id, the agent spawned or None, JSON), leaving `live` agents
    running: the agents spawned first stay; every later one is terminated right after its
    spawn. The JSON is made from one envelope of each kind with its ids replaced: encoding a
    million envelopes one by one would take longer than writing them."""
    now = datetime.now(UTC)
    spawned = Envelope.wrap(AgentSpawned(agent=agent), source="vsm/bench")
    ended = AgentTerminated(
        agent_id=agent.agent_id, agent_type="worker", reason="bench", terminated_at=now
    )
    terminated = Envelope.wrap(ended, source="vsm/bench")
    templates = {
        "spawned": spawned.model_dump_json(),
        "terminated": terminated.model_dump_json(),
    }
    ids = {"spawned": spawned.id, "terminated": terminated.id}

    def event(kind: str, n: int) -> tuple[str, AgentInfo | None, bytes]:
        agent_id, event_id = f"worker-{n:012x}", f"{kind[0]}{n:031x}"
        body = templates[kind].replace(agent.agent_id, agent_id).replace(ids[kind], event_id)
        stays = kind == "spawned" and n < live
        return (
            event_id,
            agent.model_copy(update={"agent_id": agent_id}) if stays else None,
            (body.encode()),
        )

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
    `registry_open_s`, `policy_open_s` (target under 10 s; `*_open_cpu_s`: this process's
    CPU time meanwhile, which a loaded machine stretches less), the entries each read after
    the snapshot. `BENCH_REPLAY_SIZE=quick|full`
    picks the sizes whatever `--quick` says."""
    size = "quick" if ctx.quick else "full"
    size = os.environ.get("BENCH_REPLAY_SIZE", size)
    namespace = ctx.namespace
    ns = Namespace(namespace)
    figures: dict[str, float] = {}
    service = _runtime(ctx, namespace, "bench-replay")
    async with started(service):
        # S1: the history, with a snapshot (`System1.snapshot`; one writer: it covers all
        # before it) every `every` events as the replica that wrote them would append. Every
        # later agent is gone again before the next snapshot, so the running agents are the
        # first LIVE_AGENTS and the writer's registry holds only those.
        writer = _system1(service.bus)
        events = REGISTRY_EVENTS[size]
        stream = ns.name(REGISTRY_LOG.name)
        await service.bus.declare(REGISTRY_LOG)
        started_at = time.perf_counter()
        agent = new_agent("worker", {}, datetime.now(UTC))
        history = _registry_history(events, LIVE_AGENTS[size], agent)
        snapshots = 0
        snapshot: tuple[str, str] | None = None
        every = max(EVERY, LIVE_AGENTS[size] // ITEMS_PER_ENTRY)  # as `SnapshotLog` does
        async with Writer(ctx.url) as out:
            while chunk := list(itertools.islice(history, every)):
                await out.write(stream, [body for _, _, body in chunk])
                for event_id, stays, _ in chunk:
                    if stays is not None:
                        writer.registry.apply(event_id, AgentSpawned(agent=stays))
                        snapshot = None
                if snapshot is None:
                    state = Envelope.wrap(writer.snapshot(None), source="vsm/bench")
                    snapshot = (state.model_dump_json(), state.id)
                await out.write(stream, [_renamed(snapshot, f"snapshot-{snapshots}")])
                snapshots += 1
        figures["registry_write_s"] = time.perf_counter() - started_at
        figures["registry_snapshots"] = snapshots
        figures["registry_snapshot_kb"] = len(snapshot[0]) / 1024 if snapshot else 0
        reader = _system1(service.bus)
        fresh = _registry_journal(service, reader)
        started_at, cpu = time.perf_counter(), time.process_time()
        await fresh.start(600)
        figures["registry_open_s"] = time.perf_counter() - started_at
        figures["registry_open_cpu_s"] = time.process_time() - cpu
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
        throttles = [
            ThrottlePolicy(
                policy_type="throttle", limits=[ThrottleLimit(target="*", max_rate_per_s=1 + r)]
            )
            for r in range(50)
        ]
        base = PolicyRecord(
            vsm_id="root/s0",
            policy_type="throttle",
            version=1,
            policy=throttles[0],
            source="operator",
            created_at=now,
        )
        async with Writer(ctx.url) as out:
            for first in range(0, versions, BATCH):
                records = [
                    base.model_copy(
                        update={
                            "vsm_id": f"root/s{n % POLICY_KEYS}",
                            "version": n // POLICY_KEYS + 1,
                            "policy": throttles[n % 50],
                        }
                    )
                    for n in range(first, min(first + BATCH, versions))
                ]
                await out.write(
                    stream,
                    (
                        Envelope.wrap(PolicyChanged(record=r), source="vsm/bench")
                        .model_dump_json()
                        .encode()
                        for r in records
                    ),
                )
                # As `PolicyJournal.adopt` does after each publish, a batch at a time: a
                # snapshot must follow every change it holds, so one is due only between two.
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
        started_at, cpu = time.perf_counter(), time.process_time()
        await fresh_policies.replay()
        figures["policy_open_s"] = time.perf_counter() - started_at
        figures["policy_open_cpu_s"] = time.process_time() - cpu
        figures["policy_entries_read"] = fresh_policies.log.read
        await fresh_policies.close()
        latest = restored.latest("root/s0", "throttle")
        assert latest is not None
        assert latest.version == versions // POLICY_KEYS, latest
    figures["registry_events"] = events
    figures["policy_versions"] = versions
    figures["target_s"] = TARGET_S
    return figures
