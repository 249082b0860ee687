"""S1 on the real broker: the registry over REST, commands and results, audits, pain, Claude.

One system (seven processes) serves the whole module, with `operations` pointed at a fake
Anthropic Messages API; the restart test restarts `operations` inside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import pytest
from aiormq import spec

from scripts.localrun import LocalSystem
from tests.support.cleanup import delete_namespace, exchange_exists
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.polling import eventually
from tests.support.probe import Probe, open_probe
from tests.support.system import launch
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    REGISTRY_LOG,
    S1_REGISTRY,
    AgentCommand,
    AuditReport,
    AuditRequest,
    audit_key,
    command_key,
    earlier_command_queue,
    partition_queue,
    results_exchange,
)
from vsm.kit.bus import AnyEnvelope
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

API_KEY = "test-key"
SPAWNED: list[str] = []


def expected_checksum(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def delete_s1(amqp_url: str, namespace: str, agent_ids: list[str]) -> None:
    queues = [REGISTRY_LOG.name, AGENT_DEAD_LETTERS, *(partition_queue(k).name for k in range(16))]
    for agent_id in agent_ids:
        queue = earlier_command_queue(agent_id)
        queues += [queue.name, queue.dead_letter_queue]
    exchanges = [S1_REGISTRY.name, *(results_exchange(a).name for a in agent_ids)]
    await delete_namespace(amqp_url, namespace, queues=queues, exchanges=exchanges)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def s1_system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic
) -> Iterator[LocalSystem]:
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        PERFORMANCE_INTERVAL="1",
        PERFORMANCE_REFRESH="86400",  # an unchanged report is not sent again during a test
        LLM_RETRY_DEADLINE_S="10",
        **fake.env(API_KEY),
    )
    yield running
    running.stop()
    asyncio.run(delete_s1(amqp_url, running.env["VSM_NAMESPACE"], SPAWNED))


@pytest.fixture
async def rest(s1_system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(s1_system, timeout=40) as client:
        yield client


@pytest.fixture
async def s1_probe(amqp_url: str, s1_system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, s1_system.env["VSM_NAMESPACE"]) as client:
        yield client


async def spawn(rest: httpx.AsyncClient, agent_type: str, **config: Any) -> str:
    response = await rest.post("/api/vsm/agents", json={"type": agent_type, "config": config})
    assert response.status_code == 201, response.text
    agent_id = str(response.json()["agent_id"])
    SPAWNED.append(agent_id)
    return agent_id


async def command(
    rest: httpx.AsyncClient, agent_id: str, kind: str, data: dict[str, Any]
) -> httpx.Response:
    return await rest.post(f"/api/vsm/agents/{agent_id}/command", json={"type": kind, "data": data})


def raw_envelope(body: Any) -> bytes:
    envelope = Envelope.wrap(body, source="vsm/test")
    return envelope.model_dump_json().encode()


# Registry --------------------------------------------------------------------------------
async def test_spawn_list_get_and_terminate(rest: httpx.AsyncClient) -> None:
    agent_id = await spawn(rest, "worker", allocation=2)

    listed = (await rest.get("/api/vsm/agents")).json()
    assert agent_id in [a["agent_id"] for a in listed]
    got = (await rest.get(f"/api/vsm/agents/{agent_id}")).json()
    assert got["agent_type"] == "worker"
    assert got["allocation"] == 2
    assert set(got["capabilities"]) == {"process_data", "transform", "analyze"}

    gone = await rest.delete(f"/api/vsm/agents/{agent_id}")
    assert gone.status_code == 200
    assert gone.json()["state"] == "terminated"
    listed = (await rest.get("/api/vsm/agents")).json()
    assert agent_id not in [a["agent_id"] for a in listed]
    assert (await rest.get(f"/api/vsm/agents/{agent_id}")).status_code == 404
    late = await command(rest, agent_id, "process_data", {"data": 1})
    assert late.status_code == 404
    assert late.json()["error"] == "agent_not_found"


async def test_an_agent_is_no_queue_and_a_terminated_one_leaves_no_route_nor_results_exchange(
    rest: httpx.AsyncClient, amqp_url: str, s1_system: LocalSystem
) -> None:
    agent_id = await spawn(rest, "worker")
    assert (await command(rest, agent_id, "process_data", {"data": 1})).status_code == 200
    prefix = s1_system.env["VSM_NAMESPACE"]
    exchange = f"{prefix}.{results_exchange(agent_id).name}"
    commands = f"{prefix}.{topology.S1_COMMANDS.name}"
    key = command_key("worker", agent_id, "process_data")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        async with await connection.channel() as channel:  # no queue of its own
            await channel.get_exchange(exchange, ensure=True)
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.get_queue(
                    f"{prefix}.{earlier_command_queue(agent_id).name}", ensure=True
                )
        assert (await rest.delete(f"/api/vsm/agents/{agent_id}")).status_code == 200

        async def deleted() -> bool:  # in the background, just after the answer
            return not await exchange_exists(connection, exchange)

        await eventually(deleted, timeout=20, what="the results exchange deleted")
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(commands, ensure=False)
        with pytest.raises(aio_pika.exceptions.DeliveryError):  # returned: no route left
            await target.publish(
                aio_pika.Message(raw_envelope(AgentCommand(command_type="process_data"))),
                key,
                mandatory=True,
            )


async def test_agent_types_are_declared_with_their_capabilities(rest: httpx.AsyncClient) -> None:
    types = {t["agent_type"]: t for t in (await rest.get("/api/vsm/agent-types")).json()}
    assert set(types) == {"worker", "llm_worker", "sensor", "api"}
    assert "chat" in types["llm_worker"]["capabilities"]
    assert "base_urls" in types["api"]["config_schema"]["properties"]
    for kind in types.values():
        assert set(kind["commands"]) == set(kind["capabilities"])
    analyze = types["worker"]["commands"]["analyze"]
    assert analyze["input_schema"]["required"] == ["values"]
    assert "median" in analyze["output_schema"]["properties"]
    assert "message" in types["llm_worker"]["commands"]["chat"]["input_schema"]["properties"]


async def test_a_command_whose_input_does_not_fit_names_each_field(
    rest: httpx.AsyncClient,
) -> None:
    agent_id = await spawn(rest, "worker")
    response = await command(rest, agent_id, "analyze", {"values": ["x", 2], "mean": 1})
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == "invalid_command"
    fields = {e["field"] for e in error["details"]["errors"]}
    assert fields == {"data.values.0", "data.mean"}
    answered = await command(rest, agent_id, "analyze", {"values": [1, 2, 3]})
    assert answered.json()["result"]["median"] == 2


# Commands --------------------------------------------------------------------------------
async def test_two_sequential_and_fifty_concurrent_commands_all_succeed(
    rest: httpx.AsyncClient,
) -> None:
    agent_id = await spawn(rest, "worker", allocation=4)
    for n in range(2):
        payload = {"n": n, "text": "héllo"}
        response = await command(rest, agent_id, "process_data", {"data": payload})
        assert response.status_code == 200
        assert response.json()["result"]["checksum"] == expected_checksum(payload)

    payloads = [{"i": i, "values": list(range(i))} for i in range(50)]
    responses = await asyncio.gather(
        *(command(rest, agent_id, "process_data", {"data": p}) for p in payloads)
    )
    results = [r.json() for r in responses]
    assert [r["status"] for r in results] == ["ok"] * 50
    assert [r["result"]["checksum"] for r in results] == [expected_checksum(p) for p in payloads]
    assert len({r["command_id"] for r in results}) == 50


async def test_a_command_on_the_commands_exchange_yields_its_result_on_the_results_exchange(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker")
    own = await s1_probe.bind_queue(f"obs-{agent_id}", results_exchange(agent_id).name)
    aggregate = await s1_probe.bind_queue(f"obs-all-{agent_id}", topology.S1_RESULTS.name)
    sent = AgentCommand(
        command_id=f"cmd-{secrets.token_hex(4)}",
        command_type="process_data",
        data={"data": [1, 2, 3]},
    )

    await s1_probe.publish_raw(
        topology.S1_COMMANDS.name,
        raw_envelope(sent),
        routing_key=command_key("worker", agent_id, "process_data"),
    )

    for queue in (own, aggregate):
        result = AnyEnvelope.validate_json((await s1_probe.get(queue)).body).data
        assert result.command_id == sent.command_id  # type: ignore[attr-defined]
        assert result.status == "ok"  # type: ignore[attr-defined]
        assert result.result["checksum"] == expected_checksum([1, 2, 3])  # type: ignore[attr-defined]
        assert result.processing_time_ms >= 0  # type: ignore[attr-defined]


async def test_worker_transforms_and_analyzes(rest: httpx.AsyncClient) -> None:
    agent_id = await spawn(rest, "worker")
    upper = await command(
        rest, agent_id, "transform", {"operation": "uppercase", "data": {"a": ["x", "y"]}}
    )
    assert upper.json()["result"] == {"data": {"a": ["X", "Y"]}}
    stats = (await command(rest, agent_id, "analyze", {"values": [1, 2, 3, 4, 10]})).json()
    assert stats["result"]["median"] == 3
    assert stats["result"]["max"] == 10
    assert stats["result"]["trend"] == "increasing"


async def test_an_unsupported_command_answers_capability_not_supported(
    rest: httpx.AsyncClient,
) -> None:
    agent_id = await spawn(rest, "worker")
    response = await command(rest, agent_id, "chat", {"message": "hi"})
    assert response.status_code == 200
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == "capability_not_supported"


# S3* audit -------------------------------------------------------------------------------
async def test_an_audit_on_the_commands_exchange_answers_with_the_request_correlation_id(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker", allocation=3)
    request = s1_probe.bus.envelope(AuditRequest(audit_type="resource_audit"))
    properties = spec.Basic.Properties(
        content_type="application/json", message_id=request.id, correlation_id=request.id
    )
    raw = await s1_probe.bus.requester.request(
        s1_probe.namespace.name(topology.S1_COMMANDS.name),
        audit_key(agent_id),
        request.model_dump_json().encode(),
        properties,
        5.0,
    )
    reply = AnyEnvelope.validate_json(raw.body)
    assert raw.correlation_id == request.id
    assert reply.correlation_id == request.correlation_id
    assert reply.causation_id == request.id
    assert isinstance(reply.data, AuditReport)
    assert reply.data.report["allocation"] == 3

    for audit_type in ("state_dump", "metrics_only"):
        response = await rest.post(
            "/api/vsm/audit/bypass", json={"agent_id": agent_id, "audit_type": audit_type}
        )
        assert response.status_code == 200, response.text
        assert response.json()["audit_type"] == audit_type
    state = response.json()["report"]
    assert "performance" in state


async def test_a_silent_agent_times_out_and_an_unknown_one_is_not_found(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    silent = f"ghost-{secrets.token_hex(3)}"
    SPAWNED.append(silent)
    await s1_probe.bus.declare(earlier_command_queue(silent))  # a route, and nobody serving it
    response = await rest.post(
        "/api/vsm/audit/bypass",
        json={"agent_id": silent, "audit_type": "state_dump", "timeout_s": 1},
    )
    assert response.status_code == 504
    assert response.json()["error"] == "timeout"

    missing = await rest.post(
        "/api/vsm/audit/bypass", json={"agent_id": "no-such-agent", "audit_type": "state_dump"}
    )
    assert missing.status_code == 404


# Algedonic and performance ---------------------------------------------------------------
async def test_five_errors_in_ten_seconds_raise_exactly_one_pain_signal(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker")
    feelings = await s1_probe.bind_queue(f"feel-{agent_id}", topology.ALGEDONIC.name)

    for _ in range(15):  # a burst, then a storm: still one episode
        response = await command(rest, agent_id, "analyze", {"values": []})
        assert response.json()["error"]["code"] == "invalid_command"
    await asyncio.sleep(1.0)

    signals = []
    queue = await s1_probe.channel.get_queue(s1_probe.namespace.name(feelings), ensure=False)
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        signal = AnyEnvelope.validate_json(message.body).data
        assert isinstance(signal, AlgedonicSignal)
        if signal.origin == f"operations/{agent_id}":
            signals.append(signal)
    assert [(s.kind, s.reason) for s in signals] == [("pain", "error_burst")]


async def test_each_agent_reports_beers_indices_upward(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker", allocation=2, max_allocation=8)
    reports = await s1_probe.bind_queue(
        f"perf-{agent_id}", topology.CONTROL.name, f"s1.performance.{agent_id}"
    )
    for _ in range(3):
        await command(rest, agent_id, "process_data", {"data": "x"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        report = AnyEnvelope.validate_json((await s1_probe.get(reports)).body).data
        if report.succeeded:  # type: ignore[attr-defined]
            break
    # Lightly loaded and all succeeding: it achieved all it was asked (the indices are
    # bounded by the work offered), so every index is 1 (services/operations/.../performance.py).
    assert report.capability > 0  # type: ignore[attr-defined]
    assert report.actuality == pytest.approx(report.capability)  # type: ignore[attr-defined]
    assert report.latency == pytest.approx(1.0)  # type: ignore[attr-defined]
    assert report.performance == pytest.approx(1.0)  # type: ignore[attr-defined]


async def test_a_quiet_agent_stops_reporting_until_it_has_something_new_to_say(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker")
    reports = await s1_probe.bind_queue(
        f"quiet-{agent_id}", topology.CONTROL.name, f"s1.performance.{agent_id}"
    )

    async def next_report(timeout: float = 10.0) -> Any:
        return AnyEnvelope.validate_json((await s1_probe.get(reports, timeout)).body).data

    await command(rest, agent_id, "process_data", {"data": "x"})
    while (await next_report()).succeeded == 0:  # the report of the command's window
        pass
    while (await next_report()).succeeded:  # the command has left the 1 s window: quiet
        pass
    with pytest.raises(TimeoutError):  # a quiet report once, not every interval
        await next_report(timeout=3.5)
    await command(rest, agent_id, "process_data", {"data": "y"})
    assert (await next_report()).succeeded == 1


async def test_an_agent_says_nothing_before_its_first_command(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    reports = await s1_probe.bind_queue(
        f"dormant-{time.monotonic_ns()}", topology.CONTROL.name, "s1.performance.#"
    )
    dormant = await spawn(rest, "worker", allocation=2, max_allocation=8)
    witness = await spawn(rest, "worker")

    async def worked(agent_id: str) -> list[str]:
        """The agents reported, in order, up to `agent_id`'s first report of work done."""
        seen = []
        while True:
            report = AnyEnvelope.validate_json((await s1_probe.get(reports, 10.0)).body).data
            seen.append(report.agent_id)
            if report.agent_id == agent_id and report.succeeded:
                return seen

    # The witness works after the dormant agent was spawned (and synced: the spawn answers
    # once the replica follows it), so its report comes at the same reporting tick as a
    # report of the dormant one would, or a later one: the dormant one had its chance.
    await command(rest, witness, "process_data", {"data": "w"})
    assert dormant not in await worked(witness)
    await command(rest, dormant, "process_data", {"data": "x"})  # activates it
    assert dormant in await worked(dormant)  # it reports once it has worked


# Bad input -------------------------------------------------------------------------------
async def test_bad_spawns_and_bodies_get_clear_http_errors(rest: httpx.AsyncClient) -> None:
    unknown = await rest.post("/api/vsm/agents", json={"type": "robot", "config": {}})
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "invalid_agent_type"
    assert unknown.json()["details"]["field"] == "type"

    invalid = await rest.post(
        "/api/vsm/agents", json={"type": "worker", "config": {"allocation": 0}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["details"]["errors"][0]["field"] == "config.allocation"

    missing_field = await rest.post("/api/vsm/agents", json={"config": {}})
    assert missing_field.status_code == 422
    assert missing_field.json()["fields"][0]["field"] == "type"

    not_json = await rest.post(
        "/api/vsm/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= not_json.status_code < 500

    huge = await rest.post(
        "/api/vsm/agents",
        json={"type": "worker", "config": {"blob": "x" * (1024 * 1024 + 1)}},
    )
    assert huge.status_code == 413
    assert (await rest.get("/api/vsm/agents")).status_code == 200


async def test_bad_commands_on_the_agent_queue_are_dead_lettered_with_their_reason(
    rest: httpx.AsyncClient, s1_probe: Probe
) -> None:
    agent_id = await spawn(rest, "worker")
    dlq = AGENT_DEAD_LETTERS
    key = command_key("worker", agent_id, "process_data")
    too_big = raw_envelope(
        AgentCommand(command_type="process_data", data={"data": "x" * (1024 * 1024 + 10)})
    )
    bad_schema = raw_envelope(AgentCommand(command_type="process_data")).replace(
        b'"command_type":"process_data"', b'"command_type":"Bad Name!"'
    )
    for body, reason in (
        (b"{not json", "malformed_json"),
        (bad_schema, "invalid_schema"),
        (too_big, "payload_too_large"),
    ):
        await s1_probe.publish_raw(topology.S1_COMMANDS.name, body, routing_key=key)
        # Every agent's dead letters share one queue: find this one by its body.
        parked = await s1_probe.get_matching(dlq, lambda m, body=body: m.body == body)
        assert parked.headers[REASON_HEADER] == reason
        assert parked.headers["x-vsm-original-routing-key"] == key
    still = await command(rest, agent_id, "process_data", {"data": "ok"})
    assert still.json()["status"] == "ok"


# Durability --------------------------------------------------------------------------------
async def test_a_restart_of_operations_keeps_the_registry(
    rest: httpx.AsyncClient, s1_system: LocalSystem
) -> None:
    kept = await spawn(rest, "worker")
    dropped = await spawn(rest, "worker")
    assert (await rest.delete(f"/api/vsm/agents/{dropped}")).status_code == 200

    process = s1_system.processes["operations"]
    process.terminate()
    process.wait(timeout=20)
    s1_system.start(["operations"])
    s1_system.wait_ready(timeout=60, services=["operations"])

    ids = [a["agent_id"] for a in (await rest.get("/api/vsm/agents")).json()]
    assert kept in ids
    assert dropped not in ids
    response = await command(rest, kept, "process_data", {"data": "after restart"})
    assert response.json()["result"]["checksum"] == expected_checksum("after restart")


# llm_worker against the fake Messages API ------------------------------------------------
async def test_llm_worker_holds_a_conversation_and_uses_only_allowed_tools(
    rest: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    agent_id = await spawn(
        rest, "llm_worker", tools=["checksum"], system_prompt="Be brief.", max_tokens=256
    )
    fake.reset()
    fake.reply_tool_use("checksum", {"text": "abc"}).reply_text("The digest is ba7816bf.")
    first = (await command(rest, agent_id, "chat", {"message": "hash abc"})).json()
    assert first["status"] == "ok", first
    assert first["result"]["text"] == "The digest is ba7816bf."
    assert first["result"]["tool_calls"] == [
        {"name": "checksum", "input": {"text": "abc"}, "status": "ok"}
    ]
    requests = fake.requests
    assert [t["name"] for t in requests[0].tools] == ["checksum"]
    assert requests[0].system == "Be brief."
    tool_result = requests[1].messages[-1]["content"][0]
    assert tool_result["type"] == "tool_result"
    assert hashlib.sha256(b"abc").hexdigest() in tool_result["content"]

    conversation = first["result"]["conversation_id"]
    fake.reply_tool_use("current_time", {}).reply_text("I may not tell the time.")
    second = (
        await command(rest, agent_id, "chat", {"message": "time?", "conversation_id": conversation})
    ).json()
    assert second["result"]["tool_calls"] == [
        {"name": "current_time", "input": {}, "status": "refused"}
    ]
    history = fake.requests[2].messages
    assert history[0] == {"role": "user", "content": "hash abc"}
    assert history[-1] == {"role": "user", "content": "time?"}
    refusal = fake.requests[3].messages[-1]["content"][0]
    assert refusal["is_error"] is True


async def test_llm_worker_retries_529_and_never_401(
    rest: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    agent_id = await spawn(rest, "llm_worker")
    fake.reset()
    fake.fail_times(2, 529).reply_text("finally")
    retried = (await command(rest, agent_id, "chat", {"message": "hello"})).json()
    assert retried["status"] == "ok", retried
    assert retried["result"]["text"] == "finally"
    assert retried["result"]["attempts"] == 3
    assert len(fake.requests) == 3

    fake.reset()
    fake.fail(401)
    refused = (await command(rest, agent_id, "chat", {"message": "hello"})).json()
    assert refused["status"] == "error"
    assert refused["error"]["code"] == "llm_auth_failed"
    assert len(fake.requests) == 1
