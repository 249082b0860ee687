"""Raw aio-pika baselines: the least a client does for each operation the kit offers.

Bodies are pre-encoded bytes of the same size and shape as the kit's envelopes, so the wire
cost is the same and the difference is the per-message work on the client side.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from bench import (
    DEADLINE_S,
    IN_FLIGHT,
    PREFETCH,
    WARMUP,
    WINDOW,
    Context,
    Figures,
    Stopwatch,
    benchmark,
    latency,
    pipelined,
)
from vsm.contract.envelope import CONTENT_TYPE
from vsm.kit.addresses import BrokerAddresses

QUORUM = {"x-queue-type": "quorum"}
REPLY_TO = "amq.rabbitmq.reply-to"


def _envelope(message_type: str, data: dict[str, object]) -> bytes:
    message_id = str(uuid.uuid4())
    return json.dumps(
        {
            "specversion": "1.0",
            "id": message_id,
            "source": "vsm/bench",
            "type": message_type,
            "time": "2026-01-01T00:00:00.000000Z",
            "datacontenttype": "application/json",
            "vsmid": "root",
            "correlationid": message_id,
            "priority": 4,
            "data": data,
        },
        separators=(",", ":"),
    ).encode()


TICK = _envelope("vsm.bench.tick.v1", {"seq": 1})
PING = _envelope("vsm.ping.v1", {})
PONG = _envelope("vsm.pong.v1", {"service": "bench", "instance": "bench-host-1234"})


def _persistent(body: bytes, **properties: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **properties,  # type: ignore[arg-type]
    )


async def _connect(ctx: Context) -> AbstractRobustConnection:
    # Robust like the kit's (FastStream's) connection; the timeout makes a first attempt that
    # fails end it, where a cancelled one would leave aio-pika reconnecting forever.
    return await BrokerAddresses(ctx.url).connect_robust(timeout=30)


async def _quorum_queue(
    ctx: Context, channel: AbstractChannel, name: str, exchange: str, kind: str, key: str
) -> aio_pika.abc.AbstractQueue:
    """A durable quorum queue bound to a durable exchange, both namespaced and emptied."""
    target = await channel.declare_exchange(
        ctx.name(exchange), aio_pika.ExchangeType(kind), durable=True
    )
    queue = await channel.declare_queue(ctx.name(name), durable=True, arguments=QUORUM)
    await queue.bind(target, routing_key=key)
    ctx.track(queues=[queue.name], exchanges=[target.name])
    await queue.purge()
    return queue


@benchmark("raw.publish")
async def publish(ctx: Context) -> Figures:
    """Publish N persistent messages, confirmed and mandatory, to a quorum queue via an exchange;
    64 publishes in flight."""
    async with await _connect(ctx) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await _quorum_queue(ctx, channel, "raw.publish", "raw.publish", "fanout", "")
        exchange = await channel.get_exchange(ctx.name("raw.publish"), ensure=False)

        async def one() -> None:
            await exchange.publish(_persistent(TICK), routing_key="", mandatory=True)

        clock = Stopwatch()
        async with asyncio.timeout(DEADLINE_S):
            await pipelined(ctx.messages, WINDOW, one)
        figures = clock.rate(ctx.messages)
        await queue.purge()
    return figures


async def fill(channel: AbstractChannel, exchange: str, key: str, body: bytes, n: int) -> None:
    """Publish `n` copies of `body` (untimed set-up for the consume cases)."""
    target = await channel.get_exchange(exchange, ensure=False)

    async def one() -> None:
        await target.publish(_persistent(body), routing_key=key, mandatory=True)

    await pipelined(n, WINDOW, one)


@benchmark("raw.consume")
async def consume(ctx: Context) -> Figures:
    """Consume and ack (manually, one by one) N messages from a pre-filled quorum queue,
    prefetch 64; timed from the first delivery to the N-th ack."""
    async with await _connect(ctx) as connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await _quorum_queue(ctx, channel, "raw.consume", "raw.consume", "fanout", "")
        await fill(channel, ctx.name("raw.consume"), "", TICK, ctx.messages)
        await channel.set_qos(prefetch_count=PREFETCH)
        done = asyncio.Event()
        clock, seen = Stopwatch(), 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal seen
            if seen == 0:
                clock.start()
            await message.ack()
            seen += 1
            if seen == ctx.messages:
                done.set()

        tag = await queue.consume(on_message)
        async with asyncio.timeout(DEADLINE_S):
            await done.wait()
        figures = clock.rate(ctx.messages)
        await queue.cancel(tag)
    return figures


Ask = Callable[[], Awaitable[object]]


@asynccontextmanager
async def responder_and_requester(ctx: Context) -> AsyncIterator[Ask]:
    """A responder on a quorum queue bound to a topic exchange, on its own connection, and a
    requester with one long-lived direct reply-to consumer and a correlation map (like the
    kit's). Requests are persistent, confirmed and mandatory; replies are confirmed."""
    async with await _connect(ctx) as server, await _connect(ctx) as client:
        serving = await server.channel(publisher_confirms=True)
        await serving.set_qos(prefetch_count=PREFETCH)
        queue = await _quorum_queue(ctx, serving, "raw.rpc", "raw.requests", "topic", "bench.#")

        async def answer(message: AbstractIncomingMessage) -> None:
            reply = aio_pika.Message(
                PONG, content_type=CONTENT_TYPE, correlation_id=message.correlation_id
            )
            await serving.default_exchange.publish(reply, routing_key=message.reply_to or "")
            await message.ack()

        await queue.consume(answer)

        asking = await client.channel(publisher_confirms=True, on_return_raises=True)
        pending: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(message)

        replies = await asking.get_queue(REPLY_TO, ensure=False)
        await replies.consume(on_reply, no_ack=True)
        requests = await asking.get_exchange(ctx.name("raw.requests"), ensure=False)

        async def ask() -> AbstractIncomingMessage:
            correlation_id = str(uuid.uuid4())
            future = asyncio.get_running_loop().create_future()
            pending[correlation_id] = future
            message = _persistent(PING, correlation_id=correlation_id, reply_to=REPLY_TO)
            await requests.publish(message, routing_key="bench.ping", mandatory=True)
            return await future

        for _ in range(WARMUP):
            await ask()
        yield ask


async def sequential(ask: Ask, n: int) -> Figures:
    samples, clock = [], Stopwatch()
    async with asyncio.timeout(DEADLINE_S):
        for _ in range(n):
            started = time.perf_counter()
            await ask()
            samples.append(time.perf_counter() - started)
    return latency(samples, clock)


async def concurrent(ask: Ask, n: int) -> Figures:
    clock = Stopwatch()
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(n, IN_FLIGHT, ask)
    return clock.rate(n, "requests")


@benchmark("raw.rpc")
async def rpc(ctx: Context) -> Figures:
    """Request/reply round trips over direct reply-to, one at a time."""
    async with responder_and_requester(ctx) as ask:
        return await sequential(ask, ctx.requests)


@benchmark("raw.rpc16")
async def rpc16(ctx: Context) -> Figures:
    """Request/reply over direct reply-to with 16 requests in flight."""
    async with responder_and_requester(ctx) as ask:
        return await concurrent(ask, ctx.requests)


@benchmark("raw.fanout")
async def fanout(ctx: Context) -> Figures:
    """One persistent, confirmed publish at a time to a durable fanout exchange, timed from the
    start of the publish to its arrival at a consumer (no acks) of an exclusive queue bound to
    it, as `system.pain_to_policy` observes `vsm.policy`: p50/p99."""
    async with await _connect(ctx) as connection:
        observing = await connection.channel()
        target = await observing.declare_exchange(
            ctx.name("raw.fanout"), aio_pika.ExchangeType.FANOUT, durable=True
        )
        ctx.track(exchanges=[target.name])
        queue = await observing.declare_queue(
            ctx.name(f"raw.fanout.{uuid.uuid4().hex[:8]}"), exclusive=True, auto_delete=True
        )
        await queue.bind(target)
        arrival: asyncio.Future[float] | None = None

        async def on_message(message: AbstractIncomingMessage) -> None:
            if arrival is not None and not arrival.done():
                arrival.set_result(time.perf_counter())

        await queue.consume(on_message, no_ack=True)
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await publishing.get_exchange(target.name, ensure=False)
        loop = asyncio.get_running_loop()

        async def one() -> float:
            nonlocal arrival
            arrival = loop.create_future()
            started = time.perf_counter()
            await exchange.publish(_persistent(TICK), routing_key="", mandatory=True)
            return await arrival - started

        for _ in range(WARMUP):
            await one()
        samples, clock = [], Stopwatch()
        async with asyncio.timeout(DEADLINE_S):
            for _ in range(ctx.requests):
                samples.append(await one())
        return latency(samples, clock)
