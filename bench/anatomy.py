"""`python -m bench.anatomy [--quick] [--no-profile]`: where the system cases' time goes.

Not a benchmark (nothing is registered, no ratios): it launches the system as
`bench.system` does, on a private broker (or `AMQP_URL`), and

1. splits a REST command's latency into layers, each measured alone in the same run: raw
   request/reply, the HTTP floor (`GET /healthz` on the gateway), one gateway -> operations
   request (`GET /api/vsm/agents/{id}`), the agent's own AMQP round trip (an `AgentCommand`
   sent from here with direct reply-to, as the gateway sends it) and the REST command;
2. splits pain -> policy with the envelopes' timestamps (same host, same clock): signal
   publish -> queen creates the `PolicyChanged` envelope -> it arrives here; and times a
   single 0.8 signal (no burst) the same way;
3. with py-spy (`uvx --from py-spy py-spy`), samples the busy services while a load runs
   (REST commands 16 in flight, `process_data` over AMQP, pain bursts, spawns) and prints,
   per process, CPU samples by package (leaf frame) and the heaviest functions (inclusive).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path

import aio_pika
import uvloop
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client.parser import text_string_to_metric_families

from bench import WARMUP, Context, pipelined
from bench.__main__ import broker_url, cleanup, redact
from bench.raw import responder_and_requester
from bench.system import (
    PAIN_BURST,
    System,
    amqp_message,
    envelope,
    launched,
    pain_burst,
    quorum_floor,
    rest_command,
)
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.operations import AgentCommand, command_key
from vsm.contract.policy import PolicyChanged

REPLY_TO = "amq.rabbitmq.reply-to"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(system: System, service: str) -> Samples:
    """The FastStream duration histograms' `_sum`/`_count` of one service, by labels."""
    response = await system.http.get(f"{system.local.url(service)}/metrics")
    response.raise_for_status()
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if "duration_seconds" in sample.name and sample.name.endswith(("_sum", "_count")):
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "app_name"))
                out[(sample.name, labels)] = sample.value
    return out


class Inside:
    """Mean time inside each service's handlers (FastStream's consume scope: decode,
    middlewares, handler, ack) and publishes (confirm included) during a phase."""

    def __init__(self, system: System, services: list[str]) -> None:
        self.system, self.services = system, services

    async def __aenter__(self) -> Inside:
        self.before = {s: await scrape(self.system, s) for s in self.services}
        return self

    async def __aexit__(self, *_: object) -> None:
        for service in self.services:
            after = await scrape(self.system, service)
            before = self.before[service]
            rows = []
            for (name, labels), value in after.items():
                if not name.endswith("_count"):
                    continue
                count = value - before.get((name, labels), 0.0)
                if count <= 0:
                    continue
                sum_name = name[: -len("_count")] + "_sum"
                total = after[(sum_name, labels)] - before.get((sum_name, labels), 0.0)
                where = dict(labels).get("handler") or dict(labels).get("destination") or "?"
                kind = "handled" if "received" in name else "published"
                rows.append((kind, where, int(count), total / count * 1000))
            print(f"  inside {service}: mean ms per message (count)")
            for kind, where, count, mean in sorted(rows, key=lambda r: -r[2])[:8]:
                short = where.replace(f"{self.system.namespace}.", "")
                print(f"    {kind:<9} {short:<44} {mean:7.2f}  ({count})")


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[8] * 1000


async def timed(n: int, op: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(WARMUP):
        await op()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - started)
    return samples


async def layers(ctx: Context, system: System, n: int) -> None:
    """REST command latency, layer by layer."""
    rows: list[tuple[str, list[float]]] = []
    async with responder_and_requester(ctx) as ask:
        rows.append(("raw request/reply (bench <-> bench, quorum queue)", await timed(n, ask)))

    async def get(path: str) -> None:
        response = await system.rest.request("GET", path)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.text[:200]}")

    async def healthz() -> None:
        await get("/healthz")

    rows.append(("HTTP floor: GET /healthz on the gateway", await timed(n, healthz)))

    async def get_agent() -> None:
        await get(f"/api/vsm/agents/{system.rest_agent}")

    rows.append(("GET /api/vsm/agents/{id} (gateway -> operations)", await timed(n, get_agent)))

    channel = await system.connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.get_exchange(system.name(topology.S1_COMMANDS.name), ensure=False)
    pending: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}

    async def on_reply(message: AbstractIncomingMessage) -> None:
        future = pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)

    replies = await channel.get_queue(REPLY_TO, ensure=False)
    await replies.consume(on_reply, no_ack=True)
    key = command_key("worker", system.rest_agent, "process_data")

    async def command_rpc() -> None:
        body = AgentCommand(command_type="process_data", data={"data": {"seq": 1}})
        wrapped = envelope(body)
        message = amqp_message(wrapped, reply_to=REPLY_TO, expiration=30)
        future = asyncio.get_running_loop().create_future()
        pending[wrapped.id] = future
        await exchange.publish(message, routing_key=key, mandatory=True)
        reply = await future
        assert json.loads(reply.body)["data"]["status"] == "ok"

    rows.append(("AgentCommand over AMQP, bench -> agent -> bench", await timed(n, command_rpc)))
    await channel.close()
    print("\nREST command phase, from the services' own metrics:")
    async with Inside(system, ["mcp-gateway", "operations"]):
        rest = await timed(n, rest_command(system))
    rows.append(("POST /api/vsm/agents/{id}/command (REST)", rest))
    print(f"\nREST command, layer by layer ({n} sequential each): p50 / p90 ms")
    for label, samples in rows:
        print(f"  {label:<56} {p50(samples):7.2f} {p90(samples):7.2f}")


async def hop(ctx: Context, system: System, n: int, quorum: bool) -> list[float]:
    """Confirmed persistent publish to a fanout -> arrival at a consumer of a bound queue:
    exclusive classic (as `raw.fanout`) or durable quorum with the kit's prefetch and acks
    (as `vsm.system5.policy`, queen's algedonic intake)."""
    channel = await system.connection.channel(publisher_confirms=True, on_return_raises=True)
    name = ctx.name(f"anatomy.hop.{secrets.token_hex(3)}")
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
    if quorum:
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
    else:
        queue = await channel.declare_queue(name, exclusive=True, auto_delete=True)
    ctx.track(queues=[name], exchanges=[name])
    await queue.bind(exchange)
    await channel.set_qos(prefetch_count=64)
    arrival: asyncio.Future[float] | None = None

    async def on_message(message: AbstractIncomingMessage) -> None:
        if arrival is not None and not arrival.done():
            arrival.set_result(time.perf_counter())
        if quorum:
            await message.ack()

    await queue.consume(on_message, no_ack=not quorum)
    body = json.dumps({"pad": "x" * 600}).encode()

    async def one() -> float:
        nonlocal arrival
        arrival = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="",
            mandatory=True,
        )
        return await arrival - started

    for _ in range(WARMUP):
        await one()
    samples = [await one() for _ in range(n)]
    await channel.close()
    return samples


async def pain_split(ctx: Context, system: System, n: int) -> None:
    """Pain -> policy split at the moment queen builds the PolicyChanged envelope."""
    print("\none broker hop, publish -> arrival (200 sequential each): p50 / p90 ms")
    for quorum in (False, True):
        samples = await hop(ctx, system, 200, quorum)
        label = "to a durable quorum queue, acked" if quorum else "to an exclusive classic queue"
        print(f"  {'fanout ' + label:<56} {p50(samples):7.2f} {p90(samples):7.2f}")
    algedonic = await system.channel.get_exchange(
        system.name(topology.ALGEDONIC.name), ensure=False
    )
    arrivals: dict[str, asyncio.Future[tuple[float, float]]] = {}

    async def on_policy(message: AbstractIncomingMessage) -> None:
        arrived = time.time()
        body = json.loads(message.body)
        if body.get("type") != PolicyChanged.TYPE:
            return
        record = body["data"]["record"]
        future = arrivals.get(record["vsm_id"])
        if future is not None and record.get("intervention_id") and not future.done():
            created = datetime.fromisoformat(body["time"].replace("Z", "+00:00")).timestamp()
            future.set_result((created, arrived))

    stop = await system.observe(topology.POLICY, on_policy)
    run_id = secrets.token_hex(3)

    async def sample(vsm_id: str, intensities: tuple[float, ...]) -> tuple[float, float]:
        arrivals[vsm_id] = asyncio.get_running_loop().create_future()
        signals = pain_burst(vsm_id, intensities)
        for message in signals[:-1]:
            await algedonic.publish(message, routing_key="", mandatory=True)
        started = time.time()
        await algedonic.publish(signals[-1], routing_key="", mandatory=True)
        created, arrived = await asyncio.wait_for(arrivals[vsm_id], 30)
        del arrivals[vsm_id]
        return created - started, arrived - created

    try:
        cases = (
            ("burst 0.4 x3, back to back", PAIN_BURST, 0.0),
            ("single 0.8, back to back", (0.8,), 0.0),
            ("burst 0.4 x3, 0.3 s apart", PAIN_BURST, 0.3),
        )
        for number, (label, intensities, gap) in enumerate(cases):
            for index in range(3):
                await sample(f"root/x{run_id}-{number}-{index}", intensities)
            print(f"\npain phase ({label}), from the services' own metrics:")
            parts = []
            async with Inside(system, ["queen"]):
                for index in range(n):
                    await asyncio.sleep(gap)
                    parts.append(await sample(f"root/a{run_id}-{number}-{index}", intensities))
            inside = [p[0] for p in parts]
            after = [p[1] for p in parts]
            total = [p[0] + p[1] for p in parts]
            print(f"pain -> policy, {label} ({n} samples): p50 / p90 ms")
            print(
                f"  {'publish of the crossing signal -> PolicyChanged built':<56} "
                f"{p50(inside):7.2f} {p90(inside):7.2f}"
            )
            print(
                f"  {'PolicyChanged built -> arrival here':<56} {p50(after):7.2f} {p90(after):7.2f}"
            )
            print(f"  {'total':<56} {p50(total):7.2f} {p90(total):7.2f}")
    finally:
        await stop()


async def declare_floor(ctx: Context, system: System, n: int) -> None:
    """What the broker alone takes to create what an agent needs: a quorum queue (its command
    queue; the agents share one DLQ), on one channel and on 16 channels at once."""
    print(f"\nbroker floor for spawning: declaring {n} durable quorum queues (+ a binding each)")
    for channels in (1, 16):
        took = (await quorum_floor(ctx, system, n, channels)).seconds
        print(
            f"  {channels:>2} channel(s): {n / took:7.1f} queues/s "
            f"({took / n * 1000:.1f} ms each) -> 1,000 queues (1,000 agents) in "
            f"{1000 / (n / took):.0f} s"
        )


# Profiles ---------------------------------------------------------------------------------
PACKAGES = (
    ("pydantic", r"pydantic"),
    ("faststream", r"faststream"),
    ("aio-pika/aiormq/pamqp", r"aio_pika|aiormq|pamqp"),
    ("structlog/logging", r"structlog|/logging/"),
    ("prometheus_client", r"prometheus_client"),
    ("opentelemetry", r"opentelemetry"),
    ("litestar/uvicorn/h11/httptools", r"litestar|uvicorn|h11|httptools|msgspec"),
    ("vsm (services, kit, contract)", r"/vsm/"),
    ("json", r"/json/"),
    ("asyncio", r"/asyncio/"),
)


def package_of(frame: str) -> str:
    for name, pattern in PACKAGES:
        if re.search(pattern, frame):
            return name
    match = re.search(r"\(([^)]*)\)", frame)
    return f"other: {Path(match.group(1).split(':')[0]).name}" if match else "other"


PLUMBING = re.compile(
    r"^(<module>|_run_module_as_main|_run_code|Server\.run|Server\.serve|asyncio_run|Runner\.run|"
    r"BaseEventLoop\.(run_until_complete|run_forever|_run_once)|Handle\._run|Thread\._bootstrap)"
)
IDLE = re.compile(r"^(EpollSelector\.select|select|Condition\.wait|Event\.wait) ")


def summarize(path: Path, label: str, top: int = 22) -> None:
    """Busy samples (idle waits left out) by package of the leaf frame, and the heaviest
    functions, inclusive, event-loop plumbing left out."""
    by_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if IDLE.match(frames[-1]):
            idle += count
            continue
        total += count
        by_package[package_of(frames[-1])] += count
        seen = set()
        for frame in frames:
            name = re.sub(r":\d+\)", ")", frame)  # function (file), no line
            if name not in seen and not PLUMBING.match(name):
                seen.add(name)
                inclusive[name] += count
    if total == 0:
        print(f"\n{label}: no busy samples")
        return
    print(f"\n{label}: {total} busy samples ({idle} idle left out); by package (leaf frame):")
    for name, count in by_package.most_common(12):
        print(f"  {count / total:6.1%}  {name}")
    print("  heaviest functions (inclusive, share of busy samples):")
    for name, count in inclusive.most_common(top):
        print(f"  {count / total:6.1%}  {name[:150]}")


async def profiled(
    system: System,
    label: str,
    services: list[str],
    load: Callable[[], Awaitable[object]],
    seconds: float,
    out: Path,
) -> None:
    """Run `load` repeatedly for `seconds` while py-spy samples `services`."""
    procs = {}
    for service in services:
        target = out / f"{label}-{service}.txt"
        procs[service] = (
            subprocess.Popen(  # noqa: ASYNC220 - started once, waited for in a thread
                [
                    "uvx",
                    "--from",
                    "py-spy",
                    "py-spy",
                    "record",
                    "--pid",
                    str(system.pid(service)),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(target),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ),
            target,
        )
    await asyncio.sleep(1.0)  # py-spy attached
    deadline = time.monotonic() + seconds - 1.5
    rounds = 0
    while time.monotonic() < deadline:
        await load()
        rounds += 1
    for service, (proc, target) in procs.items():
        _, err = await asyncio.to_thread(proc.communicate)
        if proc.returncode != 0 or not target.exists():
            print(f"py-spy on {service} failed: {err.decode()[-500:]}")
            continue
        summarize(target, f"{label}: {service}")
    print(f"({label}: {rounds} load rounds)")


async def profiles(system: System, seconds: float) -> None:
    out = Path(tempfile.mkdtemp(prefix="vsm-bench-profiles-"))
    post = rest_command(system)

    async def rest16() -> None:
        await pipelined(64, 16, post)

    await profiled(system, "rest16", ["mcp-gateway", "operations"], rest16, seconds, out)

    commands = await system.channel.get_exchange(
        system.name(topology.S1_COMMANDS.name), ensure=False
    )

    async def process_data() -> None:
        async def one() -> None:
            body = AgentCommand(command_type="process_data", data={"data": {"n": 1}})
            agent = system.workers[secrets.randbelow(len(system.workers))]
            key = command_key("worker", agent, "process_data")
            await commands.publish(amqp_message(envelope(body)), routing_key=key, mandatory=True)

        await pipelined(200, 64, one)
        await asyncio.sleep(0.2)

    print("\nprocess_data phase (below), from the services' own metrics:")
    async with Inside(system, ["operations"]):
        await profiled(
            system, "process_data", ["operations", "intelligence"], process_data, seconds, out
        )
    algedonic = await system.channel.get_exchange(
        system.name(topology.ALGEDONIC.name), ensure=False
    )

    async def pain() -> None:
        vsm_id = f"root/p{uuid.uuid4().hex[:10]}"
        for intensity in PAIN_BURST:
            signal = AlgedonicSignal(
                kind="pain", intensity=intensity, origin="bench/pain", reason="error_burst"
            )
            await algedonic.publish(
                amqp_message(envelope(signal, vsm_id=vsm_id)), routing_key="", mandatory=True
            )
        await asyncio.sleep(0.01)

    await profiled(system, "pain", ["queen", "intelligence"], pain, seconds, out)

    async def spawn() -> None:
        await pipelined(32, 16, system.spawn)

    print("\nspawn phase (below), from the services' own metrics:")
    async with Inside(system, ["operations"]):
        await profiled(system, "spawn", ["operations", "mcp-gateway"], spawn, seconds, out)
    print(f"\nraw py-spy stacks: {out}")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.anatomy", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)
    n = 60 if args.quick else 200
    async with broker_url() as url:
        ctx = Context(url, f"bench-{secrets.token_hex(4)}", 0, n, args.quick)
        print(f"broker {redact(url)}, namespace {ctx.namespace}", file=sys.stderr)
        try:
            async with AsyncExitStack() as stack:
                system = await stack.enter_async_context(launched(ctx))
                await layers(ctx, system, n)
                await pain_split(ctx, system, 30 if not args.quick else 10)
                await declare_floor(ctx, system, 40 if args.quick else 100)
                if not args.no_profile and shutil.which("uvx"):
                    await profiles(system, 8.0 if args.quick else 15.0)
        finally:
            await cleanup(ctx)


if __name__ == "__main__":
    # The services run on uvloop (uvicorn picks it), so the raw baselines and the load run
    # on it too: the ratios compare the same event loop.
    uvloop.run(main())
