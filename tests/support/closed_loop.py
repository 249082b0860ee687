"""The closed loop as a scenario, shared by its test and its benchmark.

An `api` agent works against a local endpoint (`Upstream`) through S2's fair-share lanes.
The endpoint starts failing: the agent's errors become pain, S5 intervenes with a throttle
policy, S3 turns it into an allocation with a rate, operations and S2 honour it. The
endpoint heals: the pain subsides, the intervention resolves, the throttle is lifted and
viability recovers. `Watch` records every message of the loop with the time it was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scripts.localrun import egress_allowance
from tests.support.loopback import Handler, LoopbackFake
from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.control import allocation_key
from vsm.contract.coordination import WorkItem, work_key
from vsm.contract.operations import CommandResult, results_exchange

LOOP_ENV = {
    "ALGEDONIC_HALF_LIFE_S": "4",
    "VIABILITY_FRESHNESS_S": "4",
    "PERFORMANCE_INTERVAL": "1",
    "ESCALATION_DEADLINE_S": "300",
}
"""Fast clocks, so that one episode takes seconds: pain halves every 4 s, measures are
judged over 1 s windows and forgotten after 4 s. The agent re-signals a pain that goes on
every 2 s (`pain_window_s` below): shorter than the time S5's pain takes to decay from 1
to the resolve level (about 7 s here), so an episode stays open while the trouble lasts."""

RATE_PER_S = 20.0
"""Work offered to the agent through S2 while the loop runs."""


class Upstream(LoopbackFake):
    """The outside service the `api` agent depends on: healthy, or failing with 500s."""

    label = "upstream"

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.calls = 0

    def _handle(self, handler: Handler) -> None:
        self.calls += 1
        status = 500 if self.failing else 200
        body = json.dumps({"ok": not self.failing}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def loop_env(upstream: Upstream) -> dict[str, str]:
    """`LOOP_ENV`, and operations allowed to call the running upstream (on loopback, so its
    exact endpoint is named, as an operator names a local service)."""
    return {**LOOP_ENV, **egress_allowance(f"{upstream.url}/")}


@dataclass
class Seen:
    at: float
    exchange: str
    envelope: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.envelope["data"])


@dataclass
class Watch:
    """Every message on the loop's exchanges, in the order (and at the time) it was seen."""

    probe: Probe
    seen: list[Seen] = field(default_factory=list)
    channel: AbstractChannel | None = None

    async def start(self, agent_id: str) -> None:
        await self.listen(
            (topology.ALGEDONIC.name, ""),
            (topology.INTERVENTIONS.name, "#"),
            (topology.POLICY.name, ""),
            (topology.CONTROL.name, allocation_key(agent_id)),
            (topology.COORDINATION.name, f"rescheduled.{agent_id}"),
            (results_exchange(agent_id).name, "#"),
        )

    async def listen(self, *bindings: tuple[str, str]) -> None:
        """Record what flows on each (exchange, routing key) from now on."""
        if self.channel is None:
            self.channel = await (await self.probe.bus.broker.connect()).channel()
        for exchange, key in bindings:
            queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(self.probe.namespace.name(exchange), routing_key=key)
            await queue.consume(self._taker(exchange), no_ack=True)

    def _taker(self, exchange: str) -> Any:
        async def take(message: AbstractIncomingMessage) -> None:
            self.seen.append(Seen(time.monotonic(), exchange, json.loads(message.body)))

        return take

    def story(self, since: float = 0.0) -> str:
        """What was seen since `since` (results left out): for a failing test's message."""
        lines = []
        for seen in self.seen:
            if seen.at >= since and not seen.type.endswith("result.v1"):
                data = {k: v for k, v in seen.data.items() if k not in ("record", "context")}
                lines.append(f"{seen.at - since:7.2f} {seen.type} {data}"[:240])
        return "\n".join(lines)

    def of(self, message_type: str, since: float = 0.0) -> list[Seen]:
        return [s for s in self.seen if s.type == message_type and s.at >= since]

    def failures_per_s(self, start: float, end: float) -> float:
        """Error results per second seen between `start` and `end`."""
        failures = [
            s
            for s in self.of(CommandResult.TYPE, start)
            if s.at <= end and s.data["status"] == "error"
        ]
        return len(failures) / (end - start)

    async def first(self, message_type: str, since: float = 0.0, timeout: float = 60.0) -> Seen:
        async def found() -> Seen | None:
            return next(iter(self.of(message_type, since)), None)

        return await eventually(found, timeout, interval=0.1, what=f"a {message_type}")

    async def stop(self) -> None:
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await self.channel.close()


async def spawn_api_agent(gateway: httpx.AsyncClient, upstream: Upstream) -> str:
    config = {
        "base_urls": [upstream.url],
        "retries": 0,
        "timeout_s": 2,
        "allocation": 4,
        "max_allocation": 4,
        "algedonic": {"pain_errors": 5, "pain_window_s": 2, "calm_s": 3},
    }
    reply = await gateway.post("/api/vsm/agents", json={"type": "api", "config": config})
    reply.raise_for_status()
    return str(reply.json()["agent_id"])


async def offer_work(probe: Probe, agent_id: str, rate_per_s: float = RATE_PER_S) -> None:
    """Submit `call` work for the agent through S2 at a steady rate, until cancelled."""
    while True:
        item = WorkItem(
            lane="loop",
            agent_id=agent_id,
            command_id=str(uuid.uuid4()),
            command_type="call",
            data={"url": "work"},
        )
        await probe.bus.publish(topology.COORDINATION, item, routing_key=work_key("loop"))
        await asyncio.sleep(1.0 / rate_per_s)


async def viability(gateway: httpx.AsyncClient) -> dict[str, Any]:
    reply = await gateway.get("/api/vsm/system/5")
    reply.raise_for_status()
    return dict(reply.json()["viability"])


async def until_viable(gateway: httpx.AsyncClient, viable: bool, timeout: float) -> float:
    """Seconds until S5 judges the root viable (or not, as asked); fails after `timeout`."""
    started = time.monotonic()

    async def judged() -> bool:
        return (await viability(gateway)).get("viable") is viable

    await eventually(judged, timeout, what=f"viable={viable}")
    return time.monotonic() - started
