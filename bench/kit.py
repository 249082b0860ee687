"""The same operations as `bench.raw`, through the service kit (`Runtime` and its `Bus`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from bench import DEADLINE_S, WARMUP, WINDOW, Context, Figures, Stopwatch, benchmark, pipelined
from bench.raw import Ask, concurrent, sequential
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.message import Message
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings


class Tick(Message):
    """Bench traffic: a small body, nothing else."""

    TYPE: ClassVar[str] = "vsm.bench.tick.v1"

    seq: int


TICKS = topology.Exchange("vsm.bench", "topic", "Bench traffic.")
PUBLISH_QUEUE = topology.Queue("vsm.bench.publish", (topology.Binding(TICKS, "publish"),))
CONSUME_QUEUE = topology.Queue("vsm.bench.consume", (topology.Binding(TICKS, "consume"),))
RESPONDER = "bench"
REQUESTER = "bench-client"


def runtime(ctx: Context, service: str) -> Runtime:
    """A service's runtime under the run's namespace, its names recorded for deletion."""
    settings = ServiceSettings(
        amqp_url=ctx.url, vsm_namespace=ctx.namespace, http_port=0, log_level="WARNING"
    )
    ns = Namespace(ctx.namespace)
    queues = [*topology.SHARED_QUEUES, topology.requests_queue(service)]
    queues += [PUBLISH_QUEUE, CONSUME_QUEUE]
    ctx.track(
        queues=[ns.name(n) for q in queues for n in (q.name, q.dead_letter_queue)],
        exchanges=[ns.name(e.name) for e in (*topology.EXCHANGES, TICKS)],
    )
    return Runtime(service, settings)


@asynccontextmanager
async def started(runtime: Runtime) -> AsyncIterator[Runtime]:
    await runtime.bus.start()
    try:
        yield runtime
    finally:
        await runtime.bus.stop()


async def _purge(runtime: Runtime, queue: topology.Queue) -> None:
    declared = await runtime.broker.declare_queue(runtime.bus.queue(queue))
    await declared.purge()


@benchmark("kit.publish", baseline="raw.publish")
async def publish(ctx: Context) -> Figures:
    """`bus.publish` of a `Tick` to a quorum queue bound to its exchange; 64 in flight."""
    async with started(runtime(ctx, RESPONDER)) as service:
        await service.bus.declare(PUBLISH_QUEUE)
        await _purge(service, PUBLISH_QUEUE)
        tick = Tick(seq=1)

        async def one() -> None:
            await service.bus.publish(TICKS, tick, routing_key="publish")

        clock = Stopwatch()
        async with asyncio.timeout(DEADLINE_S):
            await pipelined(ctx.messages, WINDOW, one)
        figures = clock.rate(ctx.messages)
        await _purge(service, PUBLISH_QUEUE)
    return figures


@benchmark("kit.consume", baseline="raw.consume")
async def consume(ctx: Context) -> Figures:
    """A `bus.handle` handler taking N `Tick` envelopes from a pre-filled quorum queue (filled
    by `bus.publish`); timed from the first delivery to the N-th handler return."""
    async with started(runtime(ctx, REQUESTER)) as producer:
        await producer.bus.declare(CONSUME_QUEUE)
        await _purge(producer, CONSUME_QUEUE)
        tick = Tick(seq=1)

        async def one() -> None:
            await producer.bus.publish(TICKS, tick, routing_key="consume")

        await pipelined(ctx.messages, WINDOW, one)

    consumer = runtime(ctx, RESPONDER)
    done = asyncio.Event()
    clock, seen = Stopwatch(), 0

    @consumer.bus.handle(CONSUME_QUEUE, Tick)
    async def on_tick(envelope: Envelope[Tick]) -> None:
        nonlocal seen
        if seen == 0:
            clock.start()
        seen += 1
        if seen == ctx.messages:
            done.set()

    async with started(consumer):
        async with asyncio.timeout(DEADLINE_S):
            await done.wait()
        return clock.rate(ctx.messages)


@asynccontextmanager
async def responder_and_requester(ctx: Context) -> AsyncIterator[Ask]:
    """Two runtimes in this process: `bench` answers `Ping`, `bench-client` asks."""
    async with (
        started(runtime(ctx, RESPONDER)),
        started(runtime(ctx, REQUESTER)) as client,
    ):

        async def ask() -> Envelope[Message]:
            return await client.bus.request(RESPONDER, "ping", Ping())

        for _ in range(WARMUP):
            await ask()
        yield ask


@benchmark("kit.rpc", baseline="raw.rpc")
async def rpc(ctx: Context) -> Figures:
    """`bus.request(..., Ping())` round trips to a responder runtime, one at a time."""
    async with responder_and_requester(ctx) as ask:
        return await sequential(ask, ctx.requests)


@benchmark("kit.rpc16", baseline="raw.rpc16")
async def rpc16(ctx: Context) -> Figures:
    """`bus.request(..., Ping())` with 16 requests in flight."""
    async with responder_and_requester(ctx) as ask:
        return await concurrent(ask, ctx.requests)
