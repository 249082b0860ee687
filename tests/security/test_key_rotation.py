"""Key rotation keeps the state, end to end: the seven services sign with k1, rotate to k2,
retire k1 from live traffic while it still verifies the logs (`VSM_LOG_KEYS`), and every
service restarts each time with its policies, registry and meta-system tree intact. A log
entry that does not verify (k1 removed altogether; a tampered entry) stops queen's start-up
with an error naming the entry and the key, until the operator says what to do with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import flip, launch_system, ring, secret, signed
from tests.support.polling import eventually
from tests.support.system import shut_down
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.policy import PolicyChanged
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER
from vsm.kit.names import Namespace
from vsm.kit.signing import KEY_ID_HEADER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]  # six start-ups

K1 = f"k1:{secret(b'one-')}"
K2 = f"k2:{secret(b'two-')}"
POLICY_LOG = topology.SYSTEM5_POLICIES.name
CHILD = "root/rotation"
BUDGET = {"concurrency_slots": 2, "llm_tokens_per_min": 1000, "memory_mb": 128}


@dataclasses.dataclass
class Rotation:
    """The system under test and what it must keep across restarts."""

    system: LocalSystem
    agents: list[str] = dataclasses.field(default_factory=list)
    principles: list[list[str]] = dataclasses.field(default_factory=list)

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.system.env["VSM_NAMESPACE"])

    def restart(self, services: tuple[str, ...] = tuple(SERVICES), **env: str) -> None:
        """Stop `services`, start them again with `env` changed, wait until ready."""
        for name in services:
            process = self.system.processes[name]
            process.terminate()
            process.wait(timeout=60)
        self.system = dataclasses.replace(self.system, env={**self.system.env, **env})
        self.system.start(services)
        self.system.wait_ready(timeout=240, services=services)

    def start_fails(self, **env: str) -> str:
        """Restart queen with `env` changed; it must exit: the lines it logged while starting."""
        log = self.system.log("queen")
        before = log.stat().st_size
        process = self.system.processes["queen"]
        process.terminate()
        process.wait(timeout=60)
        self.system = dataclasses.replace(self.system, env={**self.system.env, **env})
        self.system.start(["queen"])
        try:
            code = self.system.processes["queen"].wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail("queen started on a log entry that does not verify")
        assert code != 0
        return log.read_text(errors="replace")[before:]


@pytest.fixture(scope="module")
def rotation(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotation]:
    running = Rotation(
        launch_system(amqp_url, tmp_path_factory.mktemp("logs"), VSM_SIGNING_KEYS=K1)
    )
    yield running
    asyncio.run(shut_down(running.system, amqp_url))


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


def gateway(rotation: Rotation) -> httpx.AsyncClient:
    return gateway_client(rotation.system, timeout=30)


async def make_state(rotation: Rotation, principle: str) -> None:
    """A policy version and an agent, signed with whatever key signs now."""
    async with gateway(rotation) as api:
        stored = await api.put(
            "/api/vsm/policies/governance", json={"policy": {"principles": [principle]}}
        )
        assert stored.status_code == 200, stored.text
        spawned = await api.post("/api/vsm/agents", json={"type": "worker", "config": {}})
        assert spawned.status_code == 201, spawned.text
    rotation.principles.append([principle])
    rotation.agents.append(spawned.json()["agent_id"])


async def state_is_intact(rotation: Rotation) -> None:
    async with gateway(rotation) as api:
        for version, principles in enumerate(rotation.principles, 1):
            record = (await api.get(f"/api/vsm/policies/governance/{version}")).json()
            assert record["policy"]["principles"] == principles
        latest = (await api.get("/api/vsm/policies/governance")).json()
        assert latest["version"] == len(rotation.principles)
        identity = await api.get("/api/vsm/policies/identity", params={"vsm_id": CHILD})
        assert identity.status_code == 200, identity.text
        assert identity.json()["policy"]["purpose"] == "outlive its keys"
        tree = (await api.get("/api/vsm/meta-systems")).json()
        assert CHILD in [child["vsm_id"] for child in tree["children"]]
        listed = {a["agent_id"]: a["state"] for a in (await api.get("/api/vsm/agents")).json()}
        assert {agent: listed.get(agent) for agent in rotation.agents} == dict.fromkeys(
            rotation.agents, "running"
        )
        command = {"type": "process_data", "data": {"data": {"after": "rotation"}}}
        for agent in rotation.agents:
            done = await api.post(f"/api/vsm/agents/{agent}/command", json=command)
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "ok"


def refused_entry(log: str) -> dict[str, Any]:
    """The `log_entry_refused` event of the policy log queen logged before it stopped (the
    trail, which also holds `vsm.policy`, logs its own and reads on)."""
    for line in log.splitlines():
        if '"log_entry_refused"' in line:
            event: dict[str, Any] = json.loads(line)
            if event["stream"] == POLICY_LOG:
                return event
    raise AssertionError(f"no log_entry_refused of the policy log:\n{log[-3000:]}")


async def test_sign_with_k1(rotation: Rotation) -> None:
    await make_state(rotation, "signed by k1")
    async with gateway(rotation) as api:
        child = await api.post(
            "/api/vsm/meta-systems",
            params={"vsm_id": "root"},
            json={"name": "rotation", "purpose": "outlive its keys", "budget": BUDGET},
        )
        assert child.status_code == 201, child.text
    await state_is_intact(rotation)


async def test_rotate_to_k2_every_service_restarted(rotation: Rotation) -> None:
    rotation.restart(VSM_SIGNING_KEYS=f"{K2},{K1}")  # k2 signs, k1 still verifies

    await state_is_intact(rotation)
    await make_state(rotation, "signed by k2")
    await state_is_intact(rotation)


async def test_retire_k1_from_live_traffic_keeping_it_for_the_logs(
    rotation: Rotation, channel: AbstractChannel
) -> None:
    rotation.restart(VSM_SIGNING_KEYS=K2, VSM_LOG_KEYS=K1)

    await state_is_intact(rotation)
    # Live traffic signed with k1 is refused now.
    ping = Envelope.wrap(Ping(), source="vsm/test")
    route = (rotation.namespace.name(topology.REQUESTS.name), "queen.ping")
    dead_letters = await channel.declare_queue(exclusive=True, auto_delete=True)
    requests = rotation.namespace.name(topology.requests_queue("queen").name)
    await dead_letters.bind(rotation.namespace.name(topology.DEAD_LETTER.name), requests)
    exchange = await channel.get_exchange(route[0])
    await exchange.publish(signed(ping, ring(K1), *route), routing_key=route[1])
    letter = await eventually(
        lambda: dead_letters.get(no_ack=True, fail=False), timeout=15.0, what="a dead letter"
    )
    assert letter.headers[REASON_HEADER] == "bad_signature"
    assert "unknown key id 'k1'" in str(letter.headers[DETAIL_HEADER])


async def test_without_the_log_key_queen_starts_from_its_snapshot_signed_with_k2(
    rotation: Rotation,
) -> None:
    """Everything k1 signed in the policy log lies before the snapshot queen wrote, signed
    with k2, when it started on k2 (`vsm.kit.snapshots`): the start-up reads from there on,
    so the log no longer needs k1."""
    rotation.restart(("queen",), VSM_LOG_KEYS="")
    await state_is_intact(rotation)

    rotation.restart(("queen",), VSM_LOG_KEYS=K1)
    await state_is_intact(rotation)


async def capture_policy_change(
    rotation: Rotation, channel: AbstractChannel, principle: str
) -> AbstractIncomingMessage:
    """Store a policy version and catch its `PolicyChanged` as the broker delivers it."""
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(rotation.namespace.name(topology.POLICY.name))
    await make_state(rotation, principle)
    return await eventually(
        lambda: queue.get(no_ack=True, fail=False), timeout=15.0, what="the PolicyChanged"
    )


async def test_a_tampered_log_entry_stops_start_up_until_the_operator_disowns_it(
    rotation: Rotation, channel: AbstractChannel
) -> None:
    change = await capture_policy_change(rotation, channel, "signed by k2, later")
    tampered = flip(
        aio_pika.Message(change.body, headers=dict(change.headers), message_id="tampered-1"),
        b'later"',
    )
    exchange = await channel.get_exchange(rotation.namespace.name(topology.POLICY.name))
    await exchange.publish(tampered, routing_key="")  # into the log, as the fanout binds it

    log = rotation.start_fails()

    event = refused_entry(log)
    assert (event["stream"], event["message_id"], event["key_id"]) == (
        POLICY_LOG,
        "tampered-1",
        change.headers[KEY_ID_HEADER],
    )
    assert "does not match" in event["detail"]
    skip = f"{POLICY_LOG}@{event['offset']}"
    assert f"VSM_LOG_SKIP={skip}" in event["detail"]

    rotation.restart(("queen",), VSM_LOG_SKIP=skip)
    await state_is_intact(rotation)


async def test_a_retired_key_cannot_add_to_a_log(
    rotation: Rotation, channel: AbstractChannel
) -> None:
    """Kept for the logs, k1 still verifies what it signed while live; an entry it signs
    now (a leaked key) is refused: the marker queen wrote with k2 when k1 was retired from
    live traffic names k2 alone."""
    async with gateway(rotation) as api:
        latest = (await api.get("/api/vsm/policies/governance")).json()
    forged = {**latest, "version": latest["version"] + 1, "source": "operator"}
    forged["policy"] = {**latest["policy"], "principles": ["written with a leaked key"]}
    envelope = Envelope.wrap(PolicyChanged.model_validate({"record": forged}), source="vsm/queen")
    route = (rotation.namespace.name(topology.POLICY.name), "")
    exchange = await channel.get_exchange(route[0])
    await exchange.publish(signed(envelope, ring(K1), *route), routing_key="")

    log = rotation.start_fails()

    event = refused_entry(log)
    assert (event["message_id"], event["key_id"]) == (envelope.id, "k1")
    assert "after its retirement" in event["detail"]
    skips = f"{rotation.system.env['VSM_LOG_SKIP']},{POLICY_LOG}@{event['offset']}"
    rotation.restart(("queen",), VSM_LOG_SKIP=skips)
    await state_is_intact(rotation)


def test_every_service_is_still_up(rotation: Rotation) -> None:
    for service in SERVICES:
        assert rotation.system.processes[service].poll() is None, service
        assert rotation.system.ready(service), service
