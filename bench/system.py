"""The whole system: the seven services as processes on the run's broker, driven from outside.

One launch per run (`scripts.localrun.LocalSystem`, free ports, namespace `<run>-sys`) serves
every `system.*` case; it is stopped, and everything it declared deleted, when the run ends.
The bench process only drives and observes: REST through a lean keep-alive HTTP/1.1 client
(`bench.http`; `httpx` for the untimed set-up), AMQP through bare aio-pika
with envelopes built by the contract (`Envelope.wrap`) and the kit's AMQP properties, so the
client's own cost stays near the raw baselines' and the figures are the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import pkgutil
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

import vsm.contract
from bench import (
    DEADLINE_S,
    IN_FLIGHT,
    WARMUP,
    WINDOW,
    Context,
    Figures,
    Stopwatch,
    benchmark,
    latency,
    pipelined,
)
from bench.http import LeanHttp
from scripts.localrun import SERVICES, LocalSystem
from tests.support.cleanup import delete_namespace
from tests.support.rabbitmq import RabbitMQNotInstalled, find_server_script
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.contract.operations import (
    TYPE_PARTITIONS,
    AgentCommand,
    agent_routes,
    command_key,
    earlier_command_queue,
    partition_queue,
    pool_queue,
    results_exchange,
)
from vsm.contract.policy import PolicyChanged
from vsm.kit.addresses import BrokerAddresses
from vsm.kit.bus import amqp_properties


@dataclass(frozen=True)
class Sizes:
    rest: int
    """Sequential REST commands per round."""
    rest16: int
    """REST commands per round with 16 in flight."""
    commands: int
    """`process_data` commands per round over AMQP, across `workers` agents."""
    workers: int
    spawn: int
    """Agents spawned per round in `system.spawn_1000` (1,000 in a full run)."""
    pain: int
    """Pain episodes (samples) per round."""


SIZES = {
    "full": Sizes(rest=300, rest16=600, commands=1500, workers=10, spawn=1000, pain=30),
    "quick": Sizes(rest=60, rest16=120, commands=300, workers=10, spawn=100, pain=10),
}
SPAWN_WINDOW = 16
"""REST spawns in flight in `system.spawn_1000`."""
SPAWN_ROUNDS = 1
"""`system.spawn_1000` runs once, after the rounds: 1,000 agents (1,000 results exchanges) stay
until the system is torn down, so nothing else runs beside them."""
TERMINATE = 100
"""Agents of the 1,000 terminated over REST (timed: `terminated_per_s`); the rest go with the
system at the end of the run."""
PAIN_GAP_S = 0.3
"""Pause between two pain samples: an episode's aftermath (S4's adaptation proposal, S5's
verdict, the resolution) settles before the next one starts, so the figure is the latency of
the algedonic path, not of a queen still digesting 30 episodes a second."""
PAIN_BURST = (0.4, 0.4, 0.4)
"""Intensities of one burst: pain 0.4, 0.64, 0.784; the third crosses `PAIN_THRESHOLD` 0.7."""
IDLE_SETTLE_S = 12.0
"""After the spawns, before the idle window: one performance interval (10 s by default) and a
margin, so what the spawns set moving (the registry's events, S3's admissions) has settled."""
IDLE_WINDOW_S = 20.0
"""How long `system.spawn_1000` watches the system sit idle with its 1,000 agents."""
IDLE_RSS_SETTLE_S = 5.0
"""Between the services' readiness and the reading of their idle RSS (`system.idle_rss`)."""
BULK_TERMINATE = 1000
"""Ids per bulk terminate (`POST /api/vsm/agents:bulk-terminate`): the gateway's default
`REST_BULK_TERMINATE_MAX`."""
CLEANED_POLL_S = 0.1
"""How often `cleaned` asks operations for its pending deletions."""
CLEANED_MAX_S = 120.0
"""How long `cleaned` waits for the broker to hold nothing of the agents terminated."""
BULK_SYSTEM = "root/bulk"
"""The viable system `system.spawn_bulk_1000` spawns into: its quota (`AGENTS_PER_SYSTEM`)
is its own, apart from the root's 1,000 agents of `system.spawn_1000`."""
SOURCE = "vsm/bench"


def sizes(ctx: Context) -> Sizes:
    return SIZES["quick" if ctx.quick else "full"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """VmRSS of `pid` in MiB (from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def listening_pid(url: str) -> int | None:
    """The local process listening on the broker URL's port (the first node's, for a cluster),
    found through /proc, or None when the broker is on another host or its process is not
    visible from here."""
    parts = urlsplit(BrokerAddresses(url).urls[0])
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None
    port = parts.port or 5672
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if inodes and proc.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
    return None


def broker_leftovers(broker_pid: int | None, agents: Iterable[str]) -> Figures:
    """What the broker still holds of `agents` (their results exchanges, and any binding
    whose source, destination or routing key names one), asked of the node itself with
    `rabbitmqctl` in the node's own environment (its name and cookie): `left_exchanges`,
    `left_bindings`; nothing when the broker is not a local node of ours."""
    if broker_pid is None:
        return {}
    try:
        pairs = Path(f"/proc/{broker_pid}/environ").read_bytes().split(b"\0")
        environment = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        node = environment["RABBITMQ_NODENAME"]
        ctl = str(Path(find_server_script()).with_name("rabbitmqctl"))
    except (OSError, KeyError, UnicodeDecodeError, RabbitMQNotInstalled):
        return {}
    ids = set(agents)

    def listed(*args: str) -> int:
        done = subprocess.run(
            [ctl, "-n", node, "-q", *args],
            env=environment,
            capture_output=True,
            timeout=120,
            check=True,
        )
        lines = done.stdout.decode().splitlines()
        return sum(1 for line in lines if ids & set(line.replace("\t", ".").split(".")))

    try:
        return {
            "left_exchanges": listed("list_exchanges", "name"),
            "left_bindings": listed(
                "list_bindings", "source_name", "destination_name", "routing_key"
            ),
        }
    except (OSError, subprocess.SubprocessError):
        return {}


class ProcessClock:
    """A `Stopwatch` that also counts the CPU time of the processes a case drives (the seven
    services: `of(system)`), so that `cpu_us_per_op` covers both ends as in the raw cases
    (the broker's excluded in both); `cpu_us_per_op:<process>` (and `:bench`, this process)
    break it down. The broker's own CPU per operation is reported apart
    (`broker_cpu_us_per_op`) when its process is local: it tells whether the broker, not a
    service, is what a case waits for."""

    def __init__(self, pids: dict[str, int], broker: int | None) -> None:
        self.pids = pids
        self.broker = broker
        self.start()

    @classmethod
    def of(cls, system: System, also: Mapping[str, int] | None = None) -> ProcessClock:
        """The seven services' clock, and that of the processes `also` names beside them
        (e.g. an agent host: `{"agent-host": pid}`)."""
        pids = {name: process.pid for name, process in system.local.processes.items()}
        return cls({**pids, **(also or {})}, system.broker_pid)

    def start(self) -> None:
        self.clock = Stopwatch()
        self.before = {name: cpu_s(pid) for name, pid in self.pids.items()}
        self.broker_before = cpu_s(self.broker) if self.broker else 0.0

    def _cpu(self, n: int, figures: Figures) -> Figures:
        own = figures["cpu_us_per_op"]
        parts = {
            f"cpu_us_per_op:{name}": (cpu_s(pid) - self.before[name]) / n * 1e6
            for name, pid in self.pids.items()
        }
        total = own + sum(parts.values())
        if self.broker:
            parts["broker_cpu_us_per_op"] = (cpu_s(self.broker) - self.broker_before) / n * 1e6
        return {**figures, "cpu_us_per_op": total, "cpu_us_per_op:bench": own, **parts}

    def rate(self, n: int, unit: str = "msgs") -> Figures:
        return self._cpu(n, self.clock.rate(n, unit))

    def latency(self, samples_s: list[float]) -> Figures:
        return self._cpu(len(samples_s), latency(samples_s, self.clock))

    def busy_pct(self, figure: str) -> Figures:
        """Each process's CPU since `start()` in % of one core (`<figure>:<process>`, the
        broker's as `<figure>:broker`), and their sum (`<figure>`)."""
        elapsed = time.perf_counter() - self.clock.wall
        used = {name: cpu_s(pid) - self.before[name] for name, pid in self.pids.items()}
        if self.broker:
            used["broker"] = cpu_s(self.broker) - self.broker_before
        each = {f"{figure}:{name}": cpu / elapsed * 100 for name, cpu in used.items()}
        return {figure: sum(each.values()), **each}


def amqp_message(envelope: Envelope[Any], **extra: Any) -> aio_pika.Message:
    """The envelope as the kit publishes it: persistent JSON with the kit's AMQP properties."""
    return aio_pika.Message(
        envelope.model_dump_json().encode(),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **(amqp_properties(envelope) | extra),
    )


def pain_burst(vsm_id: str, intensities: Iterable[float]) -> list[aio_pika.Message]:
    """Pain signals for `vsm_id` that open one intervention episode (the last crosses)."""
    return [
        amqp_message(
            envelope(
                AlgedonicSignal(
                    kind="pain",
                    intensity=intensity,
                    origin="bench/pain",
                    reason="error_burst",
                    context={"target": "bench"},
                ),
                vsm_id=vsm_id,
            )
        )
        for intensity in intensities
    ]


def envelope(body: Message, vsm_id: str = "root") -> Envelope[Any]:
    return Envelope.wrap(body, source=SOURCE, vsm_id=vsm_id)


@dataclass
class System:
    """The launched system and the bench's own clients of it."""

    local: LocalSystem
    namespace: str
    http: httpx.AsyncClient
    """Untimed requests (set-up, checks, metrics)."""
    rest: LeanHttp
    """The timed REST load, to the gateway."""
    connection: AbstractRobustConnection
    channel: AbstractChannel
    """Publisher confirms on, mandatory publishes raise: the kit's publishing channel."""
    broker_pid: int | None = None
    """The broker's process, when it runs on this machine (`listening_pid`)."""
    rest_agent: str = ""
    workers: list[str] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)
    """Every agent spawned in this run, so their queues and exchanges get deleted."""
    pools: set[str] = field(default_factory=set)
    """Agent types offered by agent hosts beside the system (`bench.hosts`), so that their
    partition queues (`vsm.s1.pool.<type>.<k>`) get deleted."""
    token: str = ""
    """The gateway's operate token (the console's sign-in takes it too)."""
    idle_rss: dict[str, float] = field(default_factory=dict)
    """Each service's VmRSS (MiB) once ready and idle, before any agent is spawned."""

    def name(self, canonical: str) -> str:
        return f"{self.namespace}.{canonical}"

    def pid(self, service: str) -> int:
        return self.local.processes[service].pid

    async def spawn(self, agent_type: str = "worker") -> str:
        response = await self.rest.post("/api/vsm/agents", {"type": agent_type, "config": {}})
        if response.status != 201:
            raise RuntimeError(f"spawn: {response.status} {response.text[:300]}")
        agent_id: str = response.json()["agent_id"]
        self.agents.add(agent_id)
        return agent_id

    async def terminate(self, agent_id: str) -> None:
        response = await self.rest.delete(f"/api/vsm/agents/{agent_id}")
        if response.status != 200:
            raise RuntimeError(f"terminate: {response.status} {response.text[:300]}")

    async def terminate_bulk(self, agent_ids: list[str]) -> Figures:
        """Terminate `agent_ids` over REST in bulk requests of `BULK_TERMINATE`, one after
        the other: `terminated_per_s` (answered: unrouted and logged), and the CPU per
        termination of the services (`terminate_cpu_us_per_op`,
        `terminate_cpu_us_per_op:<process>`) and of the broker
        (`terminate_broker_cpu_us_per_op`); then until the broker holds nothing of them
        (their results exchanges are deleted in the background, `cleaned`): `cleaned_s`
        from the first request, `cleaned_per_s`, the CPU per termination until then
        (`cleaned_cpu_us_per_op`, `cleaned_broker_cpu_us_per_op`) and what the broker still
        holds at the end (`left_exchanges`, `left_bindings`)."""
        clock = ProcessClock.of(self)
        for start in range(0, len(agent_ids), BULK_TERMINATE):
            chunk = agent_ids[start : start + BULK_TERMINATE]
            body = {"agent_ids": chunk, "reason": "bench"}
            response = await self.rest.post("/api/vsm/agents:bulk-terminate", body)
            if response.status != 200:
                raise RuntimeError(f"bulk terminate: {response.status} {response.text[:300]}")
            answer = response.json()
            if answer["terminated"] != len(chunk):
                refused = next(r for r in answer["results"] if r["agent"] is None)
                raise RuntimeError(f"bulk terminate: {answer['refused']} refused: {refused}")
        figures = clock.rate(len(agent_ids), "terminated")
        rate = figures.pop("terminated_per_s")
        answered = {"terminated_per_s": rate, **{f"terminate_{k}": v for k, v in figures.items()}}
        return {**answered, **await self.cleaned(agent_ids, clock)}

    async def cleanups_pending(self) -> float | None:
        """Operations' `vsm_agent_cleanups_pending` (None: not reported)."""
        response = await self.http.get(self.local.url("operations") + "/metrics")
        for line in response.text.splitlines():
            if line.startswith("vsm_agent_cleanups_pending "):
                return float(line.split()[1])
        return None

    async def cleaned(self, agent_ids: list[str], clock: ProcessClock) -> Figures:
        """Once terminations are answered, wait until the broker holds nothing of
        `agent_ids`: operations' pending deletions (`cleanups_pending`) polled every
        `CLEANED_POLL_S` down to none, then the broker asked (`broker_leftovers`), again each
        second while it still holds something of them (at most `CLEANED_MAX_S` in all).
        `cleaned_s` (from `clock`'s start), `cleaned_per_s`, `cleaned_cpu_us_per_op`,
        `cleaned_broker_cpu_us_per_op`, and the leftovers as last asked."""
        deadline = time.perf_counter() + CLEANED_MAX_S
        while time.perf_counter() < deadline:
            if not await self.cleanups_pending():
                break
            await asyncio.sleep(CLEANED_POLL_S)
        n = len(agent_ids)
        figures = clock.rate(n, "cleaned")
        cleaned_s = n / figures["cleaned_per_s"]
        while True:
            left = await asyncio.to_thread(broker_leftovers, self.broker_pid, agent_ids)
            if not any(left.values()) or time.perf_counter() > deadline:
                break
            cleaned_s = time.perf_counter() - clock.clock.wall  # the broker lagged the gauge
            await asyncio.sleep(1.0)
        return {
            "cleaned_s": cleaned_s,
            "cleaned_per_s": n / cleaned_s,
            "cleaned_cpu_us_per_op": figures["cpu_us_per_op"],
            **(
                {"cleaned_broker_cpu_us_per_op": figures["broker_cpu_us_per_op"]}
                if "broker_cpu_us_per_op" in figures
                else {}
            ),
            **left,
        }

    async def observe(
        self,
        exchange: topology.Exchange,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> Callable[[], Awaitable[None]]:
        """An exclusive, auto-deleted queue of ours bound to `exchange` (`#`), consumed
        without acks; the coroutine function that stops it."""
        channel = await self.connection.channel()
        queue = await channel.declare_queue(
            self.name(f"bench.observe.{secrets.token_hex(4)}"), exclusive=True, auto_delete=True
        )
        key = "#" if exchange.type == "topic" else ""
        await queue.bind(self.name(exchange.name), routing_key=key)
        await queue.consume(on_message, no_ack=True)

        async def stop() -> None:
            await channel.close()

        return stop


@asynccontextmanager
async def launched(
    ctx: Context,
    suffix: str = "sys",
    env: dict[str, str] | None = None,
    workers: bool = True,
    ready_within_s: float = 120.0,
) -> AsyncIterator[System]:
    """The seven services on the run's broker under a namespace of their own."""
    namespace = f"{ctx.namespace}-{suffix}"
    log_dir = Path(tempfile.mkdtemp(prefix="vsm-bench-system-"))
    token = secrets.token_urlsafe(32)  # the gateway's operate token, sent with every request
    bearer = {"Authorization": f"Bearer {token}"}
    local = LocalSystem(
        env={
            "AMQP_URL": ctx.url,
            "VSM_NAMESPACE": namespace,
            "LOG_FORMAT": "json",
            "TELEGRAM_BOT_TOKEN": "",
            "VSM_OPERATE_TOKENS": token,
            "REST_RATE_LIMIT": "1000000",  # measured here: the path, not the limit
            **(env or {}),
        },
        log_dir=log_dir,
        ports={name: free_port() for name in SERVICES},
    )
    began = time.perf_counter()
    local.start()
    clean = False
    system: System | None = None
    try:
        await asyncio.to_thread(local.wait_ready, ready_within_s)
        print(
            f"system: seven services ready in {time.perf_counter() - began:.1f} s "
            f"(namespace {namespace}, logs {log_dir})",
            file=sys.stderr,
        )
        connection = await BrokerAddresses(ctx.url).connect_robust(timeout=30)
        async with (
            connection,
            httpx.AsyncClient(
                base_url=local.url("mcp-gateway"), headers=bearer, timeout=60
            ) as http,
        ):
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            rest = LeanHttp(local.url("mcp-gateway"), bearer)
            system = System(local, namespace, http, rest, connection, channel, token=token)
            system.broker_pid = listening_pid(ctx.url)
            await check_worker_schema(http)
            await asyncio.sleep(IDLE_RSS_SETTLE_S)
            system.idle_rss = {name: rss_mib(p.pid) for name, p in local.processes.items()}
            if workers:
                system.rest_agent = await system.spawn()
                for _ in range(sizes(ctx).workers):
                    system.workers.append(await system.spawn())
            try:
                yield system
            finally:
                await rest.aclose()
        clean = True
    finally:
        codes = await asyncio.to_thread(local.stop)
        agents = system.agents if system is not None else set()
        queues, exchanges = contract_names()
        queues += [partition_queue(k).name for k in range(16)]  # S1_PARTITIONS by default
        for pool in system.pools if system is not None else ():
            queues += [pool_queue(pool, k).name for k in range(TYPE_PARTITIONS)]
        for agent in agents:
            queue = earlier_command_queue(agent)
            queues += [queue.name, queue.dead_letter_queue]
            exchanges.append(results_exchange(agent).name)
        try:
            async with asyncio.timeout(120):
                await delete_namespace(ctx.url, namespace, queues, exchanges)
        except Exception as error:
            print(f"warning: cleanup of {namespace} failed: {error!r}", file=sys.stderr)
            clean = False
        unclean = {n: c for n, c in codes.items() if c not in (0, -15)}
        if clean and not unclean:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"system: exit codes {codes}; logs kept in {log_dir}", file=sys.stderr)


def contract_names() -> tuple[list[str], list[str]]:
    """Every queue (with its DLQ) and exchange the contract's modules define, so that the
    clean-up keeps up with new ones (`tests.support.cleanup` lists a fixed set)."""
    queues: list[str] = []
    exchanges: list[str] = []
    for module in pkgutil.iter_modules(vsm.contract.__path__, "vsm.contract."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, topology.Queue):
                queues += [value.name, value.dead_letter_queue]
            elif isinstance(value, topology.Exchange):
                exchanges.append(value.name)
    return queues, exchanges


async def the_system(ctx: Context) -> System:
    return await ctx.fixture("system", lambda: launched(ctx))


async def check_worker_schema(http: httpx.AsyncClient) -> None:
    """`GET /api/vsm/agent-types`: a worker's config must accept `{}` (nothing required)."""
    response = await http.get("/api/vsm/agent-types")
    response.raise_for_status()
    types = {t["agent_type"]: t for t in response.json()}
    worker = types.get("worker")
    if worker is None:
        raise RuntimeError(f"no worker agent type: {sorted(types)}")
    required = worker["config_schema"].get("required", [])
    if required or "process_data" not in worker["capabilities"]:
        raise RuntimeError(f"worker needs config {required} / lacks process_data: {worker}")


# REST commands ----------------------------------------------------------------------------
def process_data_body(seq: int) -> dict[str, Any]:
    """A worker's `process_data` command with small data (the REST cases' command)."""
    return {"type": "process_data", "data": {"data": {"seq": seq, "text": "bench"}}}


def rest_command(
    system: System,
    agent_id: str | None = None,
    body: Callable[[int], dict[str, Any]] = process_data_body,
) -> Callable[[], Awaitable[None]]:
    """One `POST /api/vsm/agents/{id}/command` round trip (`body(seq)`, by default a worker's
    `process_data`, to `system.rest_agent`); fails on anything but an ok result."""
    path = f"/api/vsm/agents/{agent_id or system.rest_agent}/command"
    seq = 0

    async def post() -> None:
        nonlocal seq
        seq += 1
        response = await system.rest.post(path, body(seq))
        if response.status != 200 or response.json().get("status") != "ok":
            raise RuntimeError(f"command: {response.status} {response.text[:300]}")

    return post


async def one_at_a_time(
    post: Callable[[], Awaitable[None]], n: int, clock: Callable[[], ProcessClock]
) -> Figures:
    """`WARMUP` untimed calls of `post`, then `n` timed one after the other: p50/p99 and the
    CPU per call of the processes `clock()` watches."""
    for _ in range(WARMUP):
        await post()
    samples, timing = [], clock()
    async with asyncio.timeout(DEADLINE_S):
        for _ in range(n):
            started = time.perf_counter()
            await post()
            samples.append(time.perf_counter() - started)
    return timing.latency(samples)


@benchmark("system.rest_command", baseline="raw.rpc")
async def rest_command_latency(ctx: Context) -> Figures:
    """`POST /api/vsm/agents/{id}/command` (`process_data`, small data) to one worker agent
    through the mcp-gateway, one at a time on one keep-alive connection: p50/p99."""
    system = await the_system(ctx)
    return await one_at_a_time(
        rest_command(system), sizes(ctx).rest, lambda: ProcessClock.of(system)
    )


@benchmark("system.rest_command16", baseline="raw.rpc16")
async def rest_command_throughput(ctx: Context) -> Figures:
    """The same REST command with 16 in flight (16 keep-alive connections): requests/s."""
    system = await the_system(ctx)
    post = rest_command(system)
    await pipelined(WARMUP, IN_FLIGHT, post)
    n, clock = sizes(ctx).rest16, ProcessClock.of(system)
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(n, IN_FLIGHT, post)
    return clock.rate(n, "requests")


# process_data over AMQP -----------------------------------------------------------------
@benchmark("system.process_data", baseline="raw.consume")
async def process_data(ctx: Context) -> Figures:
    """N `AgentCommand(process_data)` envelopes published (confirmed, 64 in flight) on
    `vsm.s1.commands`, key `worker.<id>.process_data`, round-robin over 10 worker agents;
    timed from the first publish until all N `CommandResult`s have arrived on a queue of
    ours bound to the aggregate `vsm.s1.results`: msgs/s."""
    system = await the_system(ctx)
    n = sizes(ctx).commands
    commands = system.name(topology.S1_COMMANDS.name)
    exchange = await system.channel.get_exchange(commands, ensure=False)

    def build(count: int) -> list[tuple[str, aio_pika.Message, str]]:
        out = []
        for index in range(count):
            agent = system.workers[index % len(system.workers)]
            body = AgentCommand(command_type="process_data", data={"data": {"seq": index}})
            out.append(
                (
                    body.command_id,
                    amqp_message(envelope(body)),
                    command_key("worker", agent, "process_data"),
                )
            )
        return out

    waiting: set[str] = set()
    done = asyncio.Event()
    failed: list[str] = []

    async def on_result(message: AbstractIncomingMessage) -> None:
        data = json.loads(message.body)["data"]
        if data["command_id"] in waiting:
            waiting.discard(data["command_id"])
            if data["status"] != "ok":
                failed.append(json.dumps(data["error"])[:300])
            if not waiting:
                done.set()

    stop = await system.observe(topology.S1_RESULTS, on_result)
    try:

        async def run(batch: list[tuple[str, aio_pika.Message, str]]) -> None:
            waiting.update(command_id for command_id, _, _ in batch)
            done.clear()
            todo = iter(batch)

            async def one() -> None:
                _, message, key = next(todo)
                await exchange.publish(message, routing_key=key, mandatory=True)

            await pipelined(len(batch), WINDOW, one)
            async with asyncio.timeout(DEADLINE_S):
                await done.wait()

        await run(build(len(system.workers) * 2))  # untimed: every agent has answered
        batch = build(n)
        clock = ProcessClock.of(system)
        await run(batch)
        figures = clock.rate(n)
    finally:
        await stop()
    if failed:
        raise RuntimeError(f"{len(failed)} commands failed, e.g. {failed[0]}")
    return figures


# Spawning ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Floor:
    seconds: float
    broker_cpu_s: float | None
    """The broker's CPU time for it, when its process is local."""
    undo: Floor | None = None
    """The same for removing it again, where that is timed (`routes_floor`)."""


async def quorum_floor(ctx: Context, system: System, n: int, channels: int) -> Floor:
    """How long the broker alone takes to create `n` durable quorum queues with a binding each
    (what a spawn cannot do without: the agent's command queue), over `channels` channels
    at once, with bare aio-pika; the queues are deleted afterwards (untimed)."""
    exchange = system.name(topology.S1_COMMANDS.name)
    opened = [await system.connection.channel() for _ in range(channels)]
    names = [ctx.name(f"floor.{secrets.token_hex(4)}") for _ in range(n)]
    ctx.track(queues=names)
    todo = iter(names)

    async def worker(channel: AbstractChannel) -> None:
        for name in todo:
            queue = await channel.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(exchange, routing_key=f"*.{name}.*")

    broker = system.broker_pid
    began, cpu = time.perf_counter(), cpu_s(broker) if broker else 0.0
    await asyncio.gather(*(worker(channel) for channel in opened))
    floor = Floor(time.perf_counter() - began, cpu_s(broker) - cpu if broker else None)
    deleting = iter(names)

    async def delete(channel: AbstractChannel) -> None:
        for name in deleting:
            await channel.queue_delete(name)

    began, cpu = time.perf_counter(), cpu_s(broker) if broker else 0.0
    await asyncio.gather(*(delete(channel) for channel in opened))
    undo = Floor(time.perf_counter() - began, cpu_s(broker) - cpu if broker else None)
    for channel in opened:
        await channel.close()
    return Floor(floor.seconds, floor.broker_cpu_s, undo)


async def routes_floor(ctx: Context, system: System, n: int, channels: int) -> Floor:
    """How long the broker alone takes to create what a spawn cannot do without, for `n`
    agents, over `channels` channels at once, with bare aio-pika: the agent's durable topic
    results exchange joined into `vsm.s1.results`, and its one binding into its partition
    queue (`*.<id>.*` on `vsm.s1.commands`: commands, audits, and allocations and notes
    through the fixed joins); then, timed as `undo`, the same removed as a termination
    removes them (the binding unbound, the exchange deleted with its join)."""
    ns = system.name
    partition = ns(partition_queue(0).name)
    aggregate = ns(topology.S1_RESULTS.name)
    routes = [
        (ns(binding.exchange.name), binding.routing_key.replace("{agent_id}", "{}"))
        for binding in agent_routes("{agent_id}", 0).bindings
    ]
    opened = [await system.connection.channel() for _ in range(channels)]
    names = [f"floor-{secrets.token_hex(4)}" for _ in range(n)]
    exchanges = [ctx.name(f"floor.{name}.results") for name in names]
    ctx.track(exchanges=exchanges)
    todo = iter(zip(names, exchanges, strict=True))

    async def worker(channel: AbstractChannel) -> None:
        queue = await channel.get_queue(partition, ensure=False)
        for name, results in todo:
            exchange = await channel.declare_exchange(results, "topic", durable=True)
            target = await channel.get_exchange(aggregate, ensure=False)
            await target.bind(exchange, routing_key="#")
            for source, key in routes:
                await queue.bind(source, routing_key=key.format(name))

    broker = system.broker_pid
    began, cpu = time.perf_counter(), cpu_s(broker) if broker else 0.0
    await asyncio.gather(*(worker(channel) for channel in opened))
    floor = Floor(time.perf_counter() - began, cpu_s(broker) - cpu if broker else None)
    deleting = iter(zip(names, exchanges, strict=True))

    async def delete(channel: AbstractChannel) -> None:
        queue = await channel.get_queue(partition, ensure=False)
        for name, results in deleting:
            for source, key in routes:
                await queue.unbind(source, routing_key=key.format(name))
            await channel.exchange_delete(results)

    began, cpu = time.perf_counter(), cpu_s(broker) if broker else 0.0
    await asyncio.gather(*(delete(channel) for channel in opened))
    undo = Floor(time.perf_counter() - began, cpu_s(broker) - cpu if broker else None)
    for channel in opened:
        await channel.close()
    return Floor(floor.seconds, floor.broker_cpu_s, undo)


async def idle_cpu(
    system: System, settle_s: float, window_s: float, also: Mapping[str, int] | None = None
) -> Figures:
    """CPU used by the idle system (nothing sent to it) over `window_s`, after `settle_s`:
    `idle_cpu_pct` for the seven services, the broker and the processes `also` names
    together, in % of one core, and `idle_cpu_pct:<process>` each."""
    settled = await quiesce(system, settle_s)
    before = await amqp_counts(system)
    clock = ProcessClock.of(system, also)
    await asyncio.sleep(window_s)
    figures = clock.busy_pct("idle_cpu_pct")
    after = await amqp_counts(system)
    return {**figures, "idle_settle_s": settled, **message_rates(before, after, window_s)}


QUIET_SLICE_S = 12.0
"""How often `quiesce` reads the services' message counters: longer than operations'
reporting interval (`PERFORMANCE_INTERVAL`, 10 s), whose reports go out in one burst a tick,
so that a quiet slice is not the gap between two bursts."""
QUIET_MSGS_PER_S = 1.0
"""Operations' upward messages per second (all it publishes but its heartbeats) below which
the system counts as settled: what the spawns set moving is done, and what flows now is what
an idle system sends."""
QUIET_MAX_S = 300.0
"""`quiesce` gives up waiting after this long (and says so)."""


async def quiesce(system: System, settle_s: float) -> float:
    """Wait `settle_s`, then until operations sends upward fewer than `QUIET_MSGS_PER_S`
    over a `QUIET_SLICE_S` slice (at most `QUIET_MAX_S`): how long it waited."""
    began = time.perf_counter()
    await asyncio.sleep(settle_s)
    counts = await amqp_counts(system)
    while (waited := time.perf_counter() - began) < QUIET_MAX_S:
        await asyncio.sleep(QUIET_SLICE_S)
        now = await amqp_counts(system)
        upward = sum(
            value - counts.get(key, 0.0)
            for key, value in now.items()
            if key[0] == "operations" and "published" in key[1] and ".vsm.health." not in key[2]
        )
        counts = now
        if os.environ.get("BENCH_IDLE_ROUTES"):
            print(f"idle: settling {waited:.0f} s: {upward / QUIET_SLICE_S:.1f}/s", file=sys.stderr)
        if upward / QUIET_SLICE_S < QUIET_MSGS_PER_S:
            return time.perf_counter() - began
    print(f"warning: not settled after {QUIET_MAX_S:g} s", file=sys.stderr)
    return time.perf_counter() - began


AMQP_SERIES = ("vsm_amqp_received_messages_total", "vsm_amqp_published_messages_total")
"""The services' own message counters (`vsm_amqp_*`), read from their /metrics."""


async def amqp_counts(system: System) -> dict[tuple[str, str, str], float]:
    """Every service's `AMQP_SERIES` counters from its /metrics: (service, series, labels)."""
    counts: dict[tuple[str, str, str], float] = {}
    for name in system.local.processes:
        try:
            response = await system.http.get(system.local.url(name) + "/metrics")
        except httpx.HTTPError:
            continue
        for line in response.text.splitlines():
            series, _, rest = line.partition("{")
            if series in AMQP_SERIES:
                labels, _, value = rest.rpartition("} ")
                counts[name, series, labels] = float(value)
    return counts


def message_rates(
    before: Mapping[tuple[str, str, str], float],
    after: Mapping[tuple[str, str, str], float],
    window_s: float,
) -> Figures:
    """Messages per second over the window that the services received (`idle_msgs_per_s`)
    and published (`idle_published_per_s`), each service's apart (`:<service>`); with
    `BENCH_IDLE_ROUTES` set, every route that moved is printed."""
    figures: Figures = {"idle_msgs_per_s": 0.0, "idle_published_per_s": 0.0}
    for (service, series, labels), value in after.items():
        moved = (value - before.get((service, series, labels), 0.0)) / window_s
        if not moved:
            continue
        figure = "idle_msgs_per_s" if "received" in series else "idle_published_per_s"
        figures[figure] += moved
        figures[f"{figure}:{service}"] = figures.get(f"{figure}:{service}", 0.0) + moved
        if os.environ.get("BENCH_IDLE_ROUTES"):
            print(f"idle: {service} {series} {labels} {moved:.2f}/s", file=sys.stderr)
    return figures


@benchmark("system.spawn_1000", rounds=SPAWN_ROUNDS)
async def spawn_many(ctx: Context) -> Figures:
    """Spawn 1,000 worker agents over REST (`POST /api/vsm/agents`, 16 in flight): seconds,
    and the operations process's VmRSS before and after; what the system's processes use
    while it sits idle with them (`idle_cpu`); then terminate 100 of them over REST
    (16 in flight: `terminated_per_s`) and read VmRSS again. Runs once, after the rounds.

    First the broker's floor for as many agents (`routes_floor`, 16 channels): an agent is
    no queue but a results exchange joined into `vsm.s1.results` and one binding into its
    partition, and no spawn can beat creating them; `spawn_vs_floor` is the ratio."""
    system = await the_system(ctx)
    n = sizes(ctx).spawn
    floor = await routes_floor(ctx, system, n, SPAWN_WINDOW)
    floor_s = floor.seconds
    pid = system.pid("operations")
    before = rss_mib(pid)
    spawned: list[str] = []

    async def one() -> None:
        spawned.append(await system.spawn())

    clock = ProcessClock.of(system)
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(n, SPAWN_WINDOW, one)
    spawn = clock.rate(n, "agents")
    spawn_s = n / spawn["agents_per_s"]
    after = rss_mib(pid)
    idle = await idle_cpu(system, IDLE_SETTLE_S if not ctx.quick else 2.0, IDLE_WINDOW_S)
    retiring = spawned[:TERMINATE]
    todo = iter(retiring)

    async def retire() -> None:
        await system.terminate(next(todo))

    began = time.perf_counter()
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(len(retiring), SPAWN_WINDOW, retire)
    terminated_per_s = len(retiring) / (time.perf_counter() - began)
    await asyncio.sleep(1.0)
    return {
        "spawn_s": spawn_s,
        "broker_floor_s": floor_s,
        "spawn_vs_floor": spawn_s / floor_s,
        **spawn,
        **(
            {"broker_floor_cpu_us_per_op": floor.broker_cpu_s / n * 1e6}
            if floor.broker_cpu_s is not None
            else {}
        ),
        "rss_before_mib": before,
        "rss_after_mib": after,
        **idle,
        "rss_per_agent_kib": (after - before) * 1024 / n,
        "terminated_per_s": terminated_per_s,
        "rss_after_terminate_mib": rss_mib(pid),
    }


@benchmark("system.spawn_bulk_1000", rounds=SPAWN_ROUNDS, deadline_s=600.0)
async def spawn_bulk(ctx: Context) -> Figures:
    """Spawn 1,000 worker agents over REST in one bulk request (`POST /api/vsm/agents:bulk`,
    in the viable system `root/bulk`): `spawn_s`, agents/s, the CPU per spawn of the
    services and of the broker (`broker_cpu_us_per_op`), against the broker's floor for as
    many agents (`routes_floor`, as `system.spawn_1000`); then terminate all of them over
    REST in one bulk request once the system is quiet again (`settled_s`, `quiesce`), as it
    was when they were spawned
    (`POST /api/vsm/agents:bulk-terminate`: `terminated_per_s` beside `spawned_per_s`,
    `terminate_vs_spawn`, the CPU per termination), then wait until the broker holds
    nothing of them (`cleaned_s`, `cleaned_vs_spawn`: the results exchanges go in the
    background) and ask the broker what it still holds of them. Runs once, after the
    rounds; its deadline is 600 s (launching the system when no case did before, the
    floor, the spawns and the terminations)."""
    system = await the_system(ctx)
    n = sizes(ctx).spawn
    floor = await routes_floor(ctx, system, n, SPAWN_WINDOW)
    body = {"agents": [{"type": "worker", "config": {}}] * n}
    clock = ProcessClock.of(system)
    async with asyncio.timeout(DEADLINE_S):
        response = await system.rest.post(f"/api/vsm/agents:bulk?vsm_id={BULK_SYSTEM}", body)
    spawn = clock.rate(n, "agents")
    if response.status != 200:
        raise RuntimeError(f"bulk spawn: {response.status} {response.text[:300]}")
    answer = response.json()
    spawned = [r["agent"]["agent_id"] for r in answer["results"] if r["agent"] is not None]
    system.agents.update(spawned)
    if len(spawned) != n:
        raise RuntimeError(f"bulk spawn: {answer['refused']} of {n} refused")
    spawn_s = n / spawn["agents_per_s"]
    # Terminated from a quiet system, as they were spawned into one: not while the services
    # still take in what the spawns set moving (that wait is `settled_s`).
    settled_s = await quiesce(system, IDLE_SETTLE_S if not ctx.quick else 2.0)
    async with asyncio.timeout(DEADLINE_S):
        terminated = await system.terminate_bulk(spawned)
    return {
        "spawn_s": spawn_s,
        "settled_s": settled_s,
        "broker_floor_s": floor.seconds,
        "spawn_vs_floor": spawn_s / floor.seconds,
        **spawn,
        **(
            {"broker_floor_cpu_us_per_op": floor.broker_cpu_s / n * 1e6}
            if floor.broker_cpu_s is not None
            else {}
        ),
        "spawned_per_s": spawn["agents_per_s"],
        **terminated,
        "terminate_vs_spawn": terminated["terminated_per_s"] / spawn["agents_per_s"],
        "cleaned_vs_spawn": terminated["cleaned_per_s"] / spawn["agents_per_s"],
        **undo_floor(floor, n, terminated["terminated_per_s"]),
    }


def undo_floor(floor: Floor, n: int, terminated_per_s: float) -> Figures:
    """The broker's floor for removing `n` agents' routes (`routes_floor`'s `undo`), beside
    the terminations: `terminate_floor_s`, `terminate_vs_floor` (time over the floor's) and
    `terminate_broker_floor_cpu_us_per_op`."""
    if floor.undo is None:
        return {}
    figures = {
        "terminate_floor_s": floor.undo.seconds,
        "terminate_vs_floor": n / terminated_per_s / floor.undo.seconds,
    }
    if floor.undo.broker_cpu_s is not None:
        figures["terminate_broker_floor_cpu_us_per_op"] = floor.undo.broker_cpu_s / n * 1e6
    return figures


@benchmark("system.idle_rss", rounds=1)
async def idle_rss(ctx: Context) -> Figures:
    """Each service's VmRSS once ready and idle (`rss_mib:<service>`), read when the system
    of the other system cases is launched: no agents yet, no LLM configured, no Telegram
    token; `rss_max_mib` the largest (the bar: 80 MiB)."""
    system = await the_system(ctx)
    each = {f"rss_mib:{name}": mib for name, mib in system.idle_rss.items()}
    return {"rss_max_mib": max(system.idle_rss.values()), **each}


# Pain to policy ---------------------------------------------------------------------------
@benchmark("system.pain_to_policy", baseline="raw.fanout")
async def pain_to_policy(ctx: Context) -> Figures:
    """A pain burst (three `AlgedonicSignal`s of 0.4, confirmed, on `vsm.algedonic`) for a
    fresh `vsm_id` per sample (`root/b<run>-<n>`, so every burst opens a new episode in S5);
    timed from the start of the publish of the signal that crosses `PAIN_THRESHOLD` to the
    arrival of the intervention's `PolicyChanged` on a queue of ours bound to `vsm.policy`:
    p50/p99."""
    system = await the_system(ctx)
    algedonic = await system.channel.get_exchange(
        system.name(topology.ALGEDONIC.name), ensure=False
    )
    arrivals: dict[str, asyncio.Future[float]] = {}

    async def on_policy(message: AbstractIncomingMessage) -> None:
        arrived = time.perf_counter()
        body = json.loads(message.body)
        if body.get("type") != PolicyChanged.TYPE:
            return
        record = body["data"]["record"]
        future = arrivals.get(record["vsm_id"])
        if future is not None and record.get("intervention_id") and not future.done():
            future.set_result(arrived)

    stop = await system.observe(topology.POLICY, on_policy)
    run_id = secrets.token_hex(3)
    samples: list[float] = []
    loop = asyncio.get_running_loop()
    try:

        async def burst(vsm_id: str) -> float:
            arrivals[vsm_id] = loop.create_future()
            messages = pain_burst(vsm_id, PAIN_BURST)
            for message in messages[:-1]:
                await algedonic.publish(message, routing_key="", mandatory=True)
            started = time.perf_counter()
            await algedonic.publish(messages[-1], routing_key="", mandatory=True)
            async with asyncio.timeout(30):
                arrived = await arrivals[vsm_id]
            del arrivals[vsm_id]
            return arrived - started

        for index in range(3):  # untimed
            await burst(f"root/w{run_id}-{index}")
        clock = ProcessClock.of(system)
        async with asyncio.timeout(DEADLINE_S):
            for index in range(sizes(ctx).pain):
                await asyncio.sleep(PAIN_GAP_S)
                samples.append(await burst(f"root/b{run_id}-{index}"))
        figures = clock.latency(samples)
    finally:
        await stop()
    return figures
