"""`floor.rest_command16`: a REST command's path built from the bare libraries, nothing else.

What `system.rest_command16` does, minus everything the services add on top of the libraries
(Litestar, the envelope's validation, the kit's middlewares, metrics, guards, the agent's
slots and windows): a bare ASGI app on uvicorn (httptools, uvloop) takes the POST, checks its
bearer token (a digest compared in constant time, as every route must), publishes
the command (persistent, confirmed, mandatory, direct reply-to) to a topic exchange and
waits for the reply; a bare aio-pika agent, on a quorum queue bound to that exchange,
checksums the data, answers the requester, publishes the result to its results exchange
(bound into an aggregate one, as an agent's is), both confirmed, and acks. Two processes,
as the gateway and operations are two. No service can beat this with these libraries, so it
tells how much of `system.rest_command16`'s distance from `raw.rpc16` is the services' own.

`floor.rest_command16_guarded` is the same floor with the partition queue's guarantees, which
the services cannot do without: the agent's queue declared as a partition queue is
(`x-delivery-limit`, at-least-once dead-lettering into a dead-letter exchange,
`reject-publish`). Its distance from `floor.rest_command16` is the broker's price of them.

`python -m bench.floor gateway|agent|agent-guarded URL NAMESPACE [PORT]` runs one side (the
case starts both; the gateway's token comes in `FLOOR_TOKEN`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench import DEADLINE_S, IN_FLIGHT, WARMUP, Context, Figures, benchmark, pipelined
from bench.http import LeanHttp
from bench.system import ProcessClock, free_port, listening_pid, sizes
from vsm.contract.topology import DELIVERY_LIMIT
from vsm.kit.addresses import BrokerAddresses

REPLY_TO = "amq.rabbitmq.reply-to"
COMMAND_KEY = "worker.floor-agent.process_data"


def names(namespace: str, guarded: bool = False) -> dict[str, str]:
    floor = f"{namespace}.floor.guarded" if guarded else f"{namespace}.floor"
    return {
        "commands": f"{floor}.commands",
        "results": f"{floor}.results",
        "agent_results": f"{floor}.agent.results",
        "dead_letters": f"{floor}.dead-letters",
        "queue": f"{floor}.agent.command",
    }


def queue_arguments(named: dict[str, str], guarded: bool) -> dict[str, Any]:
    """A bare quorum queue, or (`guarded`) one with a partition queue's guarantees."""
    if not guarded:
        return {"x-queue-type": "quorum"}
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": named["dead_letters"],
        "x-dead-letter-routing-key": named["queue"],
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


# The agent ----------------------------------------------------------------------------------
async def agent(url: str, namespace: str, guarded: bool = False) -> None:
    named = names(namespace, guarded)
    connection = await BrokerAddresses(url).connect_robust()
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=64)
    commands = await channel.declare_exchange(named["commands"], "topic", durable=True)
    aggregate = await channel.declare_exchange(named["results"], "topic", durable=True)
    results = await channel.declare_exchange(named["agent_results"], "topic", durable=True)
    await results.bind(aggregate, "#")
    if guarded:
        await channel.declare_exchange(named["dead_letters"], "topic", durable=True)
    queue = await channel.declare_queue(
        named["queue"], durable=True, arguments=queue_arguments(named, guarded)
    )
    await queue.bind(commands, "*.floor-agent.*")

    async def on_command(message: AbstractIncomingMessage) -> None:
        began = time.perf_counter()
        envelope = json.loads(message.body)
        command = envelope["data"]
        canonical = json.dumps(command["data"], sort_keys=True, separators=(",", ":"))
        result = {
            "agent_id": "floor-agent",
            "command_id": command["command_id"],
            "command_type": command["command_type"],
            "status": "ok",
            "result": {"checksum": hashlib.sha256(canonical.encode()).hexdigest()},
            "processing_time_ms": (time.perf_counter() - began) * 1e3,
        }
        body = json.dumps({"id": str(uuid.uuid4()), "type": "result", "data": result}).encode()
        reply = aio_pika.Message(body, correlation_id=message.correlation_id)
        await channel.default_exchange.publish(reply, routing_key=message.reply_to or "")
        await results.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=COMMAND_KEY,
        )
        await message.ack()

    await queue.consume(on_command)
    print("ready", flush=True)
    await asyncio.Future()


# The gateway --------------------------------------------------------------------------------
@dataclass
class Gateway:
    channel: aio_pika.abc.AbstractChannel
    commands: aio_pika.abc.AbstractExchange
    pending: dict[str, asyncio.Future[bytes]]


def gateway_app(url: str, namespace: str, token: str, guarded: bool = False) -> Any:
    state: list[Gateway] = []
    expected = hashlib.sha256(f"Bearer {token}".encode()).digest()

    async def start() -> None:
        connection = await BrokerAddresses(url).connect_robust()
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        pending: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(message.body)

        replies = await channel.get_queue(REPLY_TO, ensure=False)
        await replies.consume(on_reply, no_ack=True)
        commands = await channel.get_exchange(names(namespace, guarded)["commands"], ensure=False)
        state.append(Gateway(channel, commands, pending))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (event := await receive())["type"] != "lifespan.shutdown":
                await start()
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(hashlib.sha256(authorization).digest(), expected):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        request, gateway = json.loads(body), state[0]
        command_id = str(uuid.uuid4())
        envelope = {
            "id": command_id,
            "type": "command",
            "data": {"command_id": command_id, "command_type": request["type"], **request},
        }
        future = asyncio.get_running_loop().create_future()
        gateway.pending[command_id] = future
        message = aio_pika.Message(
            json.dumps(envelope).encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=command_id,
            reply_to=REPLY_TO,
        )
        await gateway.commands.publish(message, routing_key=COMMAND_KEY, mandatory=True)
        async with asyncio.timeout(30):
            reply = await future
        out = json.dumps(json.loads(reply)["data"]).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


# The case -----------------------------------------------------------------------------------
@dataclass
class Floor:
    rest: LeanHttp
    pids: dict[str, int]
    broker: int | None


@asynccontextmanager
async def started(ctx: Context, guarded: bool = False) -> AsyncIterator[Floor]:
    """The agent, then the gateway, in processes of their own; stopped when the run ends."""
    named = names(ctx.namespace, guarded)
    ctx.track(queues=[named["queue"]], exchanges=[n for k, n in named.items() if k != "queue"])
    side = "-guarded" if guarded else ""
    port = free_port()
    run = (sys.executable, "-m", "bench.floor")
    token = secrets.token_urlsafe(32)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "FLOOR_TOKEN": token}
    processes: list[asyncio.subprocess.Process] = []
    rest = LeanHttp(f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"})
    try:
        agent_process = await asyncio.create_subprocess_exec(
            *run, f"agent{side}", ctx.url, ctx.namespace, stdout=asyncio.subprocess.PIPE, env=env
        )
        processes.append(agent_process)
        assert agent_process.stdout is not None
        line = await asyncio.wait_for(agent_process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the floor agent did not start: {line!r}")
        gateway_process = await asyncio.create_subprocess_exec(
            *run, f"gateway{side}", ctx.url, ctx.namespace, str(port), env=env
        )
        processes.append(gateway_process)
        async with asyncio.timeout(60):
            while True:
                try:
                    await command(rest)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
        pids = {"floor-gateway": gateway_process.pid, "floor-agent": agent_process.pid}
        yield Floor(rest, pids, listening_pid(ctx.url))
    finally:
        await rest.aclose()
        for process in reversed(processes):
            process.terminate()
            await process.wait()


async def command(rest: LeanHttp) -> None:
    body = {"type": "process_data", "data": {"data": {"seq": 1, "text": "bench"}}}
    response = await rest.post("/api/vsm/agents/floor-agent/command", body)
    if response.status != 200 or response.json().get("status") != "ok":
        raise RuntimeError(f"floor command: {response.status} {response.text[:300]}")


@benchmark("floor.rest_command16", baseline="raw.rpc16")
async def rest_command16(ctx: Context) -> Figures:
    """The REST command of `system.rest_command16` (16 in flight, same count) through the
    bare-library gateway and agent of this module: requests/s, and the CPU of its two
    processes (`cpu_us_per_op:floor-*`) and of the broker (`broker_cpu_us_per_op`)."""
    return await measured(ctx, await ctx.fixture("floor", lambda: started(ctx)))


@benchmark("floor.rest_command16_guarded", baseline="floor.rest_command16")
async def rest_command16_guarded(ctx: Context) -> Figures:
    """`floor.rest_command16` with the agent's queue declared as a partition queue is
    (delivery limit, at-least-once dead-lettering, `reject-publish`): the broker's price
    of the guarantees the services keep."""
    floor = await ctx.fixture("floor-guarded", lambda: started(ctx, guarded=True))
    return await measured(ctx, floor)


async def measured(ctx: Context, floor: Floor) -> Figures:
    async def post() -> None:
        await command(floor.rest)

    await pipelined(WARMUP, IN_FLIGHT, post)
    n = sizes(ctx).rest16
    clock = ProcessClock(floor.pids, floor.broker)
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(n, IN_FLIGHT, post)
    return clock.rate(n, "requests")


def main(argv: list[str]) -> None:
    import uvicorn
    import uvloop

    side, url, namespace = argv[:3]
    guarded = side.endswith("-guarded")
    if side.startswith("agent"):
        uvloop.run(agent(url, namespace, guarded))
    else:
        app = gateway_app(url, namespace, os.environ["FLOOR_TOKEN"], guarded)
        uvicorn.run(app, host="127.0.0.1", port=int(argv[3]), log_config=None, access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
