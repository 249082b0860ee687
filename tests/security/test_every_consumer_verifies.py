"""Every consumer verifies: with signing keys, each queue the running system consumes refuses an
unsigned message (parked as `bad_signature` with its reason, or, on an event log, refused as a
security event), and what it would have done does not happen.

The list of consumers comes from the broker itself (`rabbitmqctl`, hence a private node),
once the system has made the queues that come and go (an agent's, a child's inbox); and every
consume call in the code is named below, so that a new consumer cannot be added unnoticed.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import KEYS, SERVICE_RING, launch_system, signed
from tests.support.polling import eventually
from tests.support.rabbitmq import PrivateRabbitMQ
from tests.support.tokens import bearer, gateway_client
from vsm.contract import topology
from vsm.contract.coordination import WorkItem, work_key
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.message import Message
from vsm.contract.operations import AGENT_DEAD_LETTERS, REGISTRY_LOG, partition_queue
from vsm.contract.operations import results_exchange as agent_results
from vsm.contract.policy import GovernancePolicy, PolicyRecord
from vsm.contract.recursion import PolicyDirective, directive_key, meta_queue
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

ROOT = Path(__file__).parents[2]
CONSUMERS = {
    "libs/kit/vsm/kit/bus.py:Bus.handle": "FastStream subscribers: the kit's middleware guards "
    "them (swept below)",
    "libs/kit/vsm/kit/consumer.py:DirectConsumers._start": "the kit's direct consumers: "
    "`admit` (swept below: an agent's queue, S2's work, a child's inbox)",
    "services/operations/vsm/operations/host.py:AgentHost._take_up": "an S1 partition (its "
    "agents' commands, audits, allocations and notes), through the kit's direct consumers",
    "libs/kit/vsm/kit/observer.py:Observer.start": "a live view (the console): a message "
    "whose signature does not hold is dropped and counted (test_kit_dead_letters)",
    "libs/kit/vsm/kit/rpc.py:Requester._open": "replies to `Bus.ask`, each verified there "
    "(test_kit_security: a keyless reply is refused)",
    "services/coordinator/vsm/coordinator/holding.py:Holding.consume": "S2's work intake: "
    "`admit` (swept, and tested below)",
    "services/coordinator/vsm/coordinator/dispatcher.py:Dispatcher._run": "S2's work intake, "
    "through Holding.consume",
    "services/queen/vsm/queen/inbox.py:Inbox.open": "a child's inbox: `admit` (swept, and "
    "tested below)",
    "libs/kit/vsm/kit/streams.py:LogReader.start": "the event logs (the trail, the registry "
    "log, the policy log, S2's, S3's, S4's and S5's journals, all four through StateJournal): "
    "`LogReading` (swept below; the policy log by test_key_rotation, the journals by "
    "test_decisions_survive_restarts)",
}
"""Every place the code consumes a queue, and what guards it."""
CONSUMING_CALLS = frozenset({"consume", "consume_held", "subscriber", "iterator", "basic_consume"})
BUDGET = {"concurrency_slots": 2, "llm_tokens_per_min": 1000, "memory_mb": 128}
CHILD = "root/sweep"


class ConsumeCalls(ast.NodeVisitor):
    """`path:Class.function` of every call of a consuming method (`x.consume(...)`, ...)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.scope: list[str] = []
        self.found: set[str] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._within(node.name, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._within(node.name, node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._within(node.name, node)

    def _within(self, name: str, node: ast.AST) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in CONSUMING_CALLS:
            self.found.add(f"{self.path}:{'.'.join(self.scope[:2])}")
        self.generic_visit(node)


def test_every_consume_call_in_the_code_is_a_known_guarded_consumer() -> None:
    found: set[str] = set()
    for source in sorted([*ROOT.glob("libs/*/vsm/**/*.py"), *ROOT.glob("services/*/vsm/**/*.py")]):
        calls = ConsumeCalls(str(source.relative_to(ROOT)))
        calls.visit(ast.parse(source.read_text(), str(source)))
        found |= calls.found

    unknown = found - CONSUMERS.keys()
    assert not unknown, (
        f"new consumers {sorted(unknown)}: run them through the kit's guard "
        "(`vsm.kit.consumer.admit`, or `Bus.log_reading` for a stream) and name them in "
        "CONSUMERS with the test that proves they refuse unsigned messages"
    )
    assert found == CONSUMERS.keys(), f"gone from the code: {sorted(CONSUMERS.keys() - found)}"


# The running system ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def node() -> Iterator[PrivateRabbitMQ]:
    with PrivateRabbitMQ() as private:
        yield private


@pytest.fixture(scope="module")
def system(
    node: PrivateRabbitMQ, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    running = launch_system(node.url, tmp_path_factory.mktemp("logs"), VSM_SIGNING_KEYS=KEYS)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def world(system: LocalSystem) -> dict[str, str]:
    """What makes the queues that come and go: an agent and a child viable system."""
    with httpx.Client(base_url=system.url("mcp-gateway"), headers=bearer(), timeout=30) as gateway:
        agent = gateway.post("/api/vsm/agents", json={"type": "worker", "config": {}})
        assert agent.status_code == 201, agent.text
        child = gateway.post(
            "/api/vsm/meta-systems",
            params={"vsm_id": "root"},
            json={"name": "sweep", "purpose": "be swept", "budget": BUDGET},
        )
        assert child.status_code == 201, child.text
    return {"agent": agent.json()["agent_id"], "child": CHILD}


@pytest.fixture
def namespace(system: LocalSystem) -> Namespace:
    return Namespace(system.env["VSM_NAMESPACE"])


@pytest.fixture
async def channel(node: PrivateRabbitMQ) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(node.url)
    async with connection:
        yield await connection.channel()


def consumed_queues(node: PrivateRabbitMQ, namespace: Namespace) -> dict[str, str]:
    """Every queue of the namespace some consumer reads, with its type. Both listings are
    needed: `list_consumers` leaves out the readers of streams."""
    consumers = json.loads(node.ctl("list_consumers", "queue_name", "--formatter", "json"))
    queues = json.loads(node.ctl("list_queues", "name", "type", "consumers", "--formatter", "json"))
    kinds = {q["name"]: q["type"] for q in queues}
    names = {c["queue_name"] for c in consumers} | {q["name"] for q in queues if q["consumers"]}
    return {name: kinds[name] for name in names if name.startswith(namespace.name(""))}


def probe(body: Message, message_id: str | None = None) -> tuple[Envelope[Any], aio_pika.Message]:
    envelope = Envelope.wrap(body, source="vsm/test")
    if message_id is not None:
        envelope = envelope.model_copy(update={"id": message_id})
    unsigned = aio_pika.Message(
        envelope.model_dump_json().encode(),
        message_id=envelope.id,
        content_type="application/json",
    )
    return envelope, unsigned


async def dead_letter_capture(
    channel: AbstractChannel, namespace: Namespace, keys: list[str]
) -> AbstractQueue:
    """A queue that sees a copy of every dead letter parked under `keys`."""
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in keys:
        await queue.bind(namespace.name(topology.DEAD_LETTER.name), routing_key=key)
    return queue


async def drain(queue: AbstractQueue, into: dict[bytes, AbstractIncomingMessage]) -> None:
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        into[message.body] = message


def security_events(system: LocalSystem) -> list[dict[str, Any]]:
    events = []
    for service in SERVICES:
        for line in system.log(service).read_text(errors="replace").splitlines():
            if '"security_event"' in line:
                events.append(json.loads(line))
    return events


async def test_every_consumed_queue_refuses_an_unsigned_message(
    node: PrivateRabbitMQ,
    system: LocalSystem,
    world: dict[str, str],
    namespace: Namespace,
    channel: AbstractChannel,
) -> None:
    declared = [
        *topology.SHARED_QUEUES,
        *(partition_queue(k) for k in range(16)),
        meta_queue(world["child"]),
        REGISTRY_LOG,
    ]
    live = {namespace.name(q.name) for q in declared if q != topology.SYSTEM5_POLICIES}

    async def all_consumed() -> dict[str, str] | None:
        found = consumed_queues(node, namespace)
        return found if live <= found.keys() else None

    consumed = await eventually(all_consumed, timeout=30.0, what="every declared queue consumed")
    # A live view's own queue (an `Observer`: operations' replicas hearing each other) drops
    # and counts what does not verify instead of parking it (CONSUMERS, test_kit_dead_letters).
    views = namespace.name("vsm.observer.")
    queues = sorted(
        name for name, kind in consumed.items() if kind != "stream" and not name.startswith(views)
    )
    streams = sorted(name for name, kind in consumed.items() if kind == "stream")
    capture = await dead_letter_capture(
        channel, namespace, [*queues, namespace.name(AGENT_DEAD_LETTERS)]
    )
    sent: dict[str, aio_pika.Message] = {}

    for name in [*queues, *streams]:
        _, unsigned = probe(Ping())
        sent[name] = unsigned
        await channel.default_exchange.publish(unsigned, routing_key=name)

    parked: dict[bytes, AbstractIncomingMessage] = {}

    async def every_queue_parked() -> bool:
        await drain(capture, parked)
        return all(sent[name].body in parked for name in queues)

    await eventually(every_queue_parked, timeout=30.0, what="every unsigned probe parked")
    for name in queues:
        letter = parked[sent[name].body]
        assert letter.headers[REASON_HEADER] == "bad_signature", name
        assert letter.headers["x-vsm-original-routing-key"] == name
        assert "not signed" in str(letter.headers[DETAIL_HEADER])

    async def refused_entries() -> set[str] | None:
        ids = {event["message_id"] for event in security_events(system)}
        return ids if {sent[name].message_id for name in streams} <= ids else None

    await eventually(refused_entries, timeout=30.0, what="every stream's probe refused")
    print(f"\nswept {len(queues)} queues and {len(streams)} streams: {[*queues, *streams]}")


async def results_of(channel: AbstractChannel, namespace: Namespace, agent: str) -> AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(namespace.name(agent_results(agent).name), routing_key="#")
    return queue


async def test_unsigned_work_is_parked_and_never_becomes_a_signed_command(
    world: dict[str, str], namespace: Namespace, channel: AbstractChannel
) -> None:
    agent = world["agent"]
    commands = await channel.declare_queue(exclusive=True, auto_delete=True)
    await commands.bind(namespace.name(topology.S1_COMMANDS.name), routing_key=f"*.{agent}.*")
    results = await results_of(channel, namespace, agent)
    parked = await dead_letter_capture(
        channel, namespace, [namespace.name(topology.SYSTEM2_WORK.name)]
    )
    exchange = await channel.get_exchange(namespace.name(topology.COORDINATION.name))

    def work() -> tuple[Envelope[Any], aio_pika.Message]:
        return probe(
            WorkItem(
                lane="sweep",
                agent_id=agent,
                command_id=f"sweep-{datetime.now(UTC).timestamp()}",
                command_type="process_data",
                data={"data": {"n": 1}},
            )
        )

    _, unsigned = work()
    await exchange.publish(unsigned, routing_key=work_key("sweep"))

    letter = await eventually(
        lambda: parked.get(no_ack=True, fail=False), timeout=15.0, what="the unsigned work parked"
    )
    assert letter.body == unsigned.body
    assert letter.headers[REASON_HEADER] == "bad_signature"
    await asyncio.sleep(2.0)
    assert await commands.get(no_ack=True, fail=False) is None  # nothing was dispatched
    assert await results.get(no_ack=True, fail=False) is None

    genuine, _ = work()  # the same work, signed: dispatched and run
    signed_work = signed(
        genuine, SERVICE_RING, namespace.name(topology.COORDINATION.name), work_key("sweep")
    )
    await exchange.publish(signed_work, routing_key=work_key("sweep"))
    command = await eventually(
        lambda: commands.get(no_ack=True, fail=False), timeout=15.0, what="the signed work sent"
    )
    assert json.loads(command.body)["data"]["agent_id"] == agent
    await eventually(lambda: results.get(no_ack=True, fail=False), timeout=15.0, what="its result")


async def test_an_unsigned_directive_is_parked_and_the_child_adopts_nothing(
    system: LocalSystem, world: dict[str, str], namespace: Namespace, channel: AbstractChannel
) -> None:
    child = world["child"]
    inbox = namespace.name(meta_queue(child).name)
    parked = await dead_letter_capture(channel, namespace, [inbox])
    exchange = await channel.get_exchange(namespace.name(topology.RECURSIVE.name))

    def directive(principle: str) -> tuple[Envelope[Any], aio_pika.Message]:
        record = PolicyRecord(
            vsm_id="root",
            policy_type="governance",
            version=1,
            policy=GovernancePolicy(policy_type="governance", principles=[principle]),
            source="operator",
            created_at=datetime.now(UTC),
        )
        return probe(PolicyDirective(record=record))

    _, unsigned = directive("obey the forger")
    await exchange.publish(unsigned, routing_key=directive_key(child))

    letter = await eventually(
        lambda: parked.get(no_ack=True, fail=False), timeout=15.0, what="the directive parked"
    )
    assert letter.headers[REASON_HEADER] == "bad_signature"
    async with gateway_client(system, timeout=10) as gateway:

        async def governance() -> dict[str, Any] | None:
            reply = await gateway.get("/api/vsm/policies/governance", params={"vsm_id": child})
            return reply.json() if reply.status_code == 200 else None

        await asyncio.sleep(2.0)
        assert await governance() is None  # nothing adopted

        genuine, _ = directive("keep the loop closed")  # signed: adopted from the parent
        key = directive_key(child)
        message = signed(genuine, SERVICE_RING, namespace.name(topology.RECURSIVE.name), key)
        await exchange.publish(message, routing_key=key)
        adopted = await eventually(governance, timeout=15.0, what="the signed directive adopted")
    assert adopted["source"] == "parent"
    assert adopted["policy"]["principles"] == ["keep the loop closed"]


def test_every_service_is_still_up(system: LocalSystem) -> None:
    for service in SERVICES:
        assert system.processes[service].poll() is None, service
        assert system.ready(service), service
