"""SIGTERM to each service under load: nothing is lost, and each exits within its grace period.

One system, each service terminated in turn while it has work in flight:

- `mcp-gateway` with REST commands in flight (each takes a while at the agent): every one is
  answered before the gateway exits.
- `operations` with a stream of commands to an `api` agent whose calls take a while: what it
  started it finishes, what it had not it leaves to the broker; the restarted process does
  the rest, and every effect happens once (the ledger counts them by idempotency key).
- every other service with a burst of pings on its requests queue: each ping is answered,
  or still waiting on the queue after the exit (replies + queued = sent).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scripts.localrun import SERVICES, LocalSystem, egress_allowance
from tests.faults.effects import EffectLedger
from tests.support.faults import (
    QUORUM_SETTLE_S,
    Report,
    ResultLog,
    Sender,
    clean_up,
    sender_bus,
    spawn,
    start_system,
)
from tests.support.polling import eventually
from tests.support.tokens import bearer
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.operations import AgentCommand
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.fault]

GRACE_S = 6.0
EFFECT_S = 0.25
REST_CALLS = 16
COMMANDS = 150
PINGS = 1500
PINGED = ("queen", "intelligence", "control", "coordinator", "telegram-gateway")
AGENTS: list[str] = []


@pytest.fixture(scope="module")
def ledger() -> Iterator[EffectLedger]:
    with EffectLedger(delay_s=EFFECT_S) as server:
        yield server


@pytest.fixture(scope="module")
def system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, ledger: EffectLedger
) -> Iterator[LocalSystem]:
    running = start_system(
        amqp_url,
        Path(tmp_path_factory.mktemp("logs")),
        SERVICES,
        SHUTDOWN_GRACE_S=str(GRACE_S),
        **egress_allowance(f"{ledger.url}/"),
    )
    yield running
    running.stop()
    asyncio.run(clean_up(amqp_url, running.env["VSM_NAMESPACE"], AGENTS, ["faults.results"]))


async def terminate(system: LocalSystem, name: str) -> tuple[float, int | None]:
    """SIGTERM `name`; seconds until it exited, and its exit code (uvicorn re-raises SIGTERM)."""
    process = system.processes[name]
    began = time.monotonic()
    system.kill(name, signal.SIGTERM)
    code = await asyncio.to_thread(process.wait, 3 * GRACE_S)
    return time.monotonic() - began, code


def stopped_cleanly(system: LocalSystem, name: str, code: int | None) -> bool:
    return code in (0, -signal.SIGTERM) and "service_stopped" in system.log(name).read_text()


async def until(check: Callable[[], bool], timeout: float = 30) -> None:
    """Until `check()` (state kept by another thread, or by callbacks) holds."""

    async def holds() -> bool:
        return check()

    await eventually(holds, timeout=timeout, interval=0.02)


class Pings:
    """A burst of pings to one service, with replies to a queue of the test's own."""

    def __init__(self, channel: AbstractChannel, namespace: str, service: str) -> None:
        self.channel = channel
        self.ns = Namespace(namespace)
        self.service = service
        self.sent: set[str] = set()
        self.replies: set[str] = set()
        self.duplicates = 0

    async def start(self, count: int) -> None:
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)
        exchange = await self.channel.get_exchange(self.ns.name(topology.REQUESTS.name))

        async def one() -> None:
            ping = Envelope.wrap(Ping(), source="vsm/faults")
            await exchange.publish(
                aio_pika.Message(
                    ping.model_dump_json().encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=ping.id,
                    correlation_id=ping.id,
                    reply_to=queue.name,
                ),
                topology.request_key(self.service, "ping"),
                mandatory=True,
            )
            self.sent.add(ping.id)

        for _ in range(0, count, 100):  # confirms pipelined, a hundred at a time
            await asyncio.gather(*(one() for _ in range(min(100, count - len(self.sent)))))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        if message.correlation_id in self.replies:
            self.duplicates += 1
        self.replies.add(message.correlation_id or "")

    async def queued(self) -> int:
        name = self.ns.name(topology.requests_queue(self.service).name)
        queue = await self.channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count is not None
        return queue.declaration_result.message_count


@pytest.mark.timeout(300)
async def test_sigterm_under_load_loses_nothing_and_exits_within_the_grace_period(
    amqp_url: str, system: LocalSystem, ledger: EffectLedger, report: Report
) -> None:
    namespace = system.env["VSM_NAMESPACE"]
    results = ResultLog(amqp_url, namespace)
    await results.start()
    exits: dict[str, tuple[float, bool]] = {}
    async with (
        sender_bus(amqp_url, namespace) as bus,
        httpx.AsyncClient(timeout=60, headers=bearer()) as http,
    ):
        agent_id = await spawn(bus, "api", base_urls=[f"{ledger.url}/"], retries=0)
        AGENTS.append(agent_id)
        await asyncio.sleep(QUORUM_SETTLE_S)

        # mcp-gateway: REST commands in flight.
        route = f"{system.url('mcp-gateway')}/api/vsm/agents/{agent_id}/command"
        calls = [
            asyncio.create_task(
                http.post(
                    route,
                    json={
                        "type": "call",
                        "data": {"method": "POST", "url": "effects", "json": {"rest": i}},
                        "timeout_s": 60,
                    },
                )
            )
            for i in range(REST_CALLS)
        ]
        await until(lambda: sum(ledger.calls.values()) >= 2)
        elapsed, code = await terminate(system, "mcp-gateway")
        exits["mcp-gateway"] = (elapsed, stopped_cleanly(system, "mcp-gateway", code))
        answers = await asyncio.gather(*calls, return_exceptions=True)
        answered = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 200]
        rest_ok = sum(1 for a in answered if a.json()["status"] == "ok")
        report(
            "sigterm_mcp_gateway",
            in_flight=REST_CALLS,
            processed=rest_ok,
            lost=REST_CALLS - len(answered),
            exit_s=round(elapsed, 2),
            grace_s=GRACE_S,
        )

        # operations: a stream of commands, some running, most queued.
        commands = [
            AgentCommand(
                command_type="call", data={"method": "POST", "url": "effects", "json": {"n": i}}
            )
            for i in range(COMMANDS)
        ]
        sender = Sender(bus, "api", agent_id)
        await sender.send_all(commands)
        ids = {c.command_id for c in commands}
        await until(lambda: len(ids & ledger.effects.keys()) >= 8)
        running = set(ledger.answering & ids)
        waiting = len(ids - results.seen.keys() - running)
        elapsed, code = await terminate(system, "operations")
        exits["operations"] = (elapsed, stopped_cleanly(system, "operations", code))
        done_before_exit = len(ids & ledger.effects.keys())
        system.start(["operations"])
        await asyncio.to_thread(system.wait_ready, 150, ["operations"])
        missing = await results.wait_for(ids, timeout=90)
        report(
            "sigterm_operations",
            commands=COMMANDS,
            in_flight=len(running) + waiting,
            running=len(running),
            waiting=waiting,
            done_before_exit=done_before_exit,
            processed=len(ids & results.seen.keys()),
            lost=len(missing),
            effects_per_command=sorted({ledger.effects[i] for i in ids}),
            repeated_calls_absorbed=ledger.repeated_calls,
            exit_s=round(elapsed, 2),
            grace_s=GRACE_S,
        )

        # The others: pings.
        channel = await (await bus.broker.connect()).channel()
        lost: dict[str, int] = {}
        for name in PINGED:
            pings = Pings(channel, namespace, name)
            await pings.start(PINGS)
            await until(lambda p=pings: len(p.replies) >= 50)
            in_flight = len(pings.sent) - len(pings.replies)
            elapsed, code = await terminate(system, name)
            exits[name] = (elapsed, stopped_cleanly(system, name, code))
            await asyncio.sleep(0.5)  # replies published just before the exit arrive
            queued = await pings.queued()
            lost[name] = len(pings.sent) - len(pings.replies) - queued
            report(
                f"sigterm_{name.replace('-', '_')}",
                in_flight=in_flight,
                processed=len(pings.replies),
                still_queued=queued,
                lost=lost[name],
                duplicates=pings.duplicates,
                exit_s=round(elapsed, 2),
                grace_s=GRACE_S,
            )
        await channel.close()
    await results.stop()

    assert len(answered) == REST_CALLS, answers
    assert rest_ok == REST_CALLS
    assert not missing, f"{len(missing)} commands lost"
    assert running, "no command was running at the SIGTERM"
    # What was running at the SIGTERM was finished and acked by the old process, not redone.
    assert all(ledger.calls[key] == 1 for key in running), {k: ledger.calls[k] for k in running}
    assert set(ledger.effects.values()) == {1}
    assert lost == dict.fromkeys(PINGED, 0), lost
    slow = {name: e for name, (e, _) in exits.items() if e >= GRACE_S}
    assert not slow, f"exited after the grace period ({GRACE_S} s): {slow}"
    unclean = [name for name, (_, clean) in exits.items() if not clean]
    assert not unclean, f"no clean shutdown: {unclean}"
