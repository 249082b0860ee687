"""What the fault tests share: a system started as processes, a client on the bus configured
as a service's, a sender that retries until confirmed, a durable log of results, REST and
readiness helpers, and the clean-up of what the agents declared."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from faststream.rabbit.schemas import Channel

from scripts.localrun import SERVICES, LocalSystem
from tests.support.cleanup import delete_namespace, new_namespace
from tests.support.system import free_port
from tests.support.tokens import TOKEN_ENV, bearer
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.operations import (
    REGISTRY_LOG,
    S1_REGISTRY,
    AgentCommand,
    AgentDescription,
    AuditReport,
    AuditRequest,
    AuditType,
    CommandResult,
    SpawnAgent,
    audit_key,
    command_key,
    earlier_command_queue,
    results_exchange,
)
from vsm.kit.addresses import BrokerAddresses
from vsm.kit.bus import AnyEnvelope, Bus, expect
from vsm.kit.names import Namespace
from vsm.kit.runtime import RECONNECT_INTERVAL_S
from vsm.kit.telemetry import create_telemetry

QUORUM_SETTLE_S = 2.0
"""A quorum queue killed < 0.5 s after its declaration can come back leaderless (3.10)."""

Report = Callable[..., None]


def start_system(
    amqp_url: str,
    log_dir: Path,
    services: Iterable[str] = SERVICES,
    timeout: float = 150,
    **env: str,
) -> LocalSystem:
    """`services` as processes on `amqp_url` under a namespace of their own, once all are ready.

    The deadline is generous: seven interpreters importing their libraries at once take a
    while on a small, shared machine.
    """
    system = LocalSystem(
        env={
            "AMQP_URL": amqp_url,
            "VSM_NAMESPACE": new_namespace(),
            "HEALTH_INTERVAL": "0.5",
            "LOG_FORMAT": "json",
            "TELEGRAM_BOT_TOKEN": "",
            **TOKEN_ENV,
            **env,
        },
        log_dir=log_dir,
        ports={name: free_port() for name in SERVICES},
    )
    system.start(services)
    try:
        system.wait_ready(timeout=timeout)
    except Exception:
        system.stop()
        raise
    return system


@asynccontextmanager
async def sender_bus(url: str, namespace: str) -> AsyncIterator[Bus]:
    """A client on the bus configured as a service's (confirms, mandatory, quick reconnect)."""
    addresses = BrokerAddresses(url)
    broker = addresses.rabbit_broker(
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        reconnect_interval=RECONNECT_INTERVAL_S,
        logger=logging.getLogger("vsm.faults.sender"),
        log_level=logging.DEBUG,
    )
    bus = Bus(
        broker,
        service="faults",
        namespace=Namespace(namespace),
        vsm_id="root",
        telemetry=create_telemetry("faults"),
        request_timeout_s=10.0,
    )
    await addresses.connect_broker(broker)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def spawn(bus: Bus, agent_type: str, **config: Any) -> str:
    reply = await bus.request(
        "operations", "spawn", SpawnAgent(agent_type=agent_type, config=config), timeout=30
    )
    return expect(reply, AgentDescription).agent.agent_id


async def audit(bus: Bus, agent_id: str, kind: AuditType = "metrics_only") -> dict[str, Any]:
    reply = await bus.ask(
        AuditRequest(audit_type=kind),
        exchange=topology.S1_COMMANDS,
        routing_key=audit_key(agent_id),
    )
    return expect(reply, AuditReport).report


@dataclass
class Sender:
    """Publishes commands with confirms, retrying each until the broker confirms it.

    A failed publish (the broker is away, or the connection dropped before the confirm) is
    counted and retried with the same command id: the agent absorbs any duplicate.
    """

    bus: Bus
    agent_type: str
    agent_id: str
    window: int = 64
    confirmed: set[str] = field(default_factory=set)
    failures: int = 0
    retried: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    envelopes: dict[str, list[str]] = field(default_factory=dict)
    """Per command id, the id of the envelope the broker confirmed."""

    async def wait_confirmed(self, count: int) -> None:
        while len(self.confirmed) < count:
            self.progress.clear()
            await self.progress.wait()

    async def send(self, command: AgentCommand) -> None:
        key = command_key(self.agent_type, self.agent_id, command.command_type)
        while True:
            try:
                envelope = await self.bus.publish(topology.S1_COMMANDS, command, routing_key=key)
            except Exception as error:  # loud: every failure is counted by its type
                self.failures += 1
                self.retried.add(command.command_id)
                self.errors[type(error).__name__] += 1
                await asyncio.sleep(0.2)
            else:
                self.envelopes.setdefault(command.command_id, []).append(envelope.id)
                self.confirmed.add(command.command_id)
                self.progress.set()
                return

    async def send_all(self, commands: list[AgentCommand]) -> None:
        gate = asyncio.Semaphore(self.window)

        async def one(command: AgentCommand) -> None:
            async with gate:
                await self.send(command)

        await asyncio.gather(*(one(c) for c in commands))


class ResultLog:
    """Every result on `vsm.s1.results`, read from a durable quorum queue of the test's own
    (it survives a broker restart) through a robust connection; acked after it is counted."""

    def __init__(self, url: str, namespace: str, name: str = "faults.results") -> None:
        self.url = url
        self.ns = Namespace(namespace)
        self.name = name
        self.seen: Counter[str] = Counter()
        self.results: dict[str, CommandResult] = {}
        self.connection: AbstractRobustConnection | None = None
        self.progress = asyncio.Event()
        self.unreadable: list[str] = []

    async def depth(self) -> int:
        """Messages still on the log's queue (not delivered, or delivered and not acked)."""
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            queue = await channel.declare_queue(self.ns.name(self.name), passive=True)
            return queue.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def start(self) -> None:
        self.connection = await BrokerAddresses(self.url).connect_robust(
            reconnect_interval=RECONNECT_INTERVAL_S
        )
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=256)
        queue = await channel.declare_queue(
            self.ns.name(self.name), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(self.ns.name(topology.S1_RESULTS.name), routing_key="#")
        await queue.consume(self._on_result)

    async def _on_result(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = AnyEnvelope.validate_json(message.body)
        except Exception as error:
            self.unreadable.append(repr(error)[:300])
            raise
        if isinstance(envelope.data, CommandResult):
            self.seen[envelope.data.command_id] += 1
            self.results[envelope.data.command_id] = envelope.data
            self.progress.set()
        with contextlib.suppress(Exception):  # a delivery of a connection since lost
            await message.ack()

    @property
    def distinct(self) -> int:
        return len(self.seen)

    @property
    def duplicates(self) -> int:
        return sum(self.seen.values()) - len(self.seen)

    async def wait_for(self, ids: set[str], timeout: float) -> set[str]:
        """The ids still missing after waiting up to `timeout` seconds for all of `ids`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while ids - self.seen.keys():
                    self.progress.clear()
                    await self.progress.wait()
        return ids - self.seen.keys()

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.close()


def rest_client(system: LocalSystem, timeout: float = 30) -> httpx.AsyncClient:
    """An operator's client of the system's REST API (paths relative to `/api/vsm`)."""
    return httpx.AsyncClient(
        base_url=f"{system.url('mcp-gateway')}/api/vsm", headers=bearer(), timeout=timeout
    )


async def readiness(system: LocalSystem, client: httpx.AsyncClient) -> dict[str, int]:
    """Each service's `/readyz` status code (0 when it does not answer at all)."""

    async def one(name: str) -> tuple[str, int]:
        try:
            response = await client.get(f"{system.url(name)}/readyz", timeout=3)
        except httpx.HTTPError:
            return name, 0
        return name, response.status_code

    return dict(await asyncio.gather(*(one(name) for name in system.processes)))


async def wait_readiness(
    system: LocalSystem, client: httpx.AsyncClient, status: int, timeout: float
) -> tuple[float, dict[str, int]]:
    """Seconds until every service's `/readyz` answers `status`, and the last answers seen."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while True:
        seen = await readiness(system, client)
        if all(code == status for code in seen.values()):
            return loop.time() - began, seen
        if loop.time() - began > timeout:
            raise AssertionError(f"/readyz not all {status} within {timeout} s: {seen}")
        await asyncio.sleep(0.25)


def command_envelope(command: AgentCommand) -> bytes:
    return Envelope.wrap(command, source="vsm/faults").model_dump_json().encode()


async def clean_up(
    amqp_url: str, namespace: str, agent_ids: Iterable[str], queues: Iterable[str] = ()
) -> None:
    """Delete the namespace's topology, the agents' queues and exchanges, and `queues`."""
    names = [REGISTRY_LOG.name, *queues]
    for agent_id in agent_ids:
        queue = earlier_command_queue(agent_id)
        names += [queue.name, queue.dead_letter_queue]
    exchanges = [S1_REGISTRY.name, *(results_exchange(a).name for a in agent_ids)]
    await delete_namespace(amqp_url, namespace, queues=names, exchanges=exchanges)
