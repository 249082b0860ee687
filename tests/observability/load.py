"""Some load on a running system, through its REST API (and bad input on the bus), so that
every metric a dashboard charts has something to say.

`episode()` makes the rare events happen once: agents spawned (workers, and an llm_worker
talking to the fake Messages API when the system has one) and one terminated, a pain
burst that S5 turns into an intervention, escalates to operators, has acknowledged and
resolves, a refused policy, a synthesis, an audit, an unsupported command, and malformed
messages that are dead-lettered. `steady()` then keeps commands and signals flowing until
cancelled, so rates and latency quantiles stay current while the panels are queried.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import httpx

from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.operations import command_key
from vsm.contract.system5 import ACK_KEY, AlertAcknowledgement, OperatorAlert
from vsm.kit.bus import AnyEnvelope

WORKERS = 2


@dataclass(frozen=True)
class Agents:
    """What the load talks to: workers, and an llm_worker (its calls are metered)."""

    workers: list[str]
    assistant: str


def ok(response: httpx.Response, *expected: int) -> httpx.Response:
    assert response.status_code in (expected or (200,)), response.text
    return response


async def spawn(gateway: httpx.AsyncClient, agent_type: str = "worker") -> str:
    response = ok(await gateway.post("/api/vsm/agents", json={"type": agent_type}), 201)
    return str(response.json()["agent_id"])


async def command(gateway: httpx.AsyncClient, agent_id: str, kind: str, data: object) -> None:
    body = {"type": kind, "data": data, "timeout_s": 10}
    ok(await gateway.post(f"/api/vsm/agents/{agent_id}/command", json=body))


async def feel(gateway: httpx.AsyncClient, kind: str, intensity: float) -> None:
    body = {"intensity": intensity, "reason": "observability_test"}
    ok(await gateway.post(f"/api/vsm/algedonic/{kind}", json=body), 202)


async def acknowledge_first_alert(probe: Probe, alerts: str) -> None:
    """Escalation reaches operators as an alert; acknowledge it as the Telegram bot would."""
    envelope: Envelope[object] = AnyEnvelope.validate_json((await probe.get(alerts, 30)).body)
    alert = envelope.data
    assert isinstance(alert, OperatorAlert), alert
    acknowledgement = AlertAcknowledgement(alert_id=alert.alert_id, by="observability-test")
    await probe.bus.publish(topology.OPERATORS, acknowledgement, routing_key=ACK_KEY)


async def bad_input(probe: Probe, agent_id: str) -> None:
    """Malformed messages for S5 and S4 (algedonic) and for an agent: each is dead-lettered."""
    await probe.publish_raw(topology.ALGEDONIC.name, b"{not json")
    key = command_key("worker", agent_id, "process_data")
    await probe.publish_raw(topology.S1_COMMANDS.name, b"{not json", key)


async def chat(gateway: httpx.AsyncClient, assistant: str) -> None:
    """One llm_worker chat: its tokens and cost are metered (an error without an API key)."""
    await command(gateway, assistant, "chat", {"message": "How are the agents doing?"})


async def episode(gateway: httpx.AsyncClient, probe: Probe) -> Agents:
    """The rare events, once; the agents left running."""
    agents = [await spawn(gateway) for _ in range(WORKERS + 1)]
    assistant = await spawn(gateway, "llm_worker")
    await chat(gateway, assistant)
    ok(await gateway.delete(f"/api/vsm/agents/{agents.pop()}"))
    alerts = await probe.bind_queue("observability.alerts", topology.OPERATORS.name, "alert.#")
    for _ in range(4):
        await feel(gateway, "pain", 0.9)
    await acknowledge_first_alert(probe, alerts)
    await feel(gateway, "pleasure", 0.6)
    refused = await gateway.put("/api/vsm/policies/throttle", json={"policy": {"limits": 7}})
    ok(refused, 422)
    synthesis = {"anomaly_type": "error_rate", "severity": 0.8}
    ok(await gateway.post("/api/vsm/system5/synthesis", json=synthesis))
    await command(gateway, agents[0], "no_such_capability", {})
    await bad_input(probe, agents[0])
    await control_and_coordination(gateway, agents)
    return Agents(agents, assistant)


async def control_and_coordination(gateway: httpx.AsyncClient, agents: list[str]) -> None:
    """S3 and S2 at work: an allocation and an audit, scheduled work, a note between units."""
    grant = {"agent_id": agents[0], "resources": {"concurrency_slots": 3}, "priority": 5}
    ok(await gateway.post("/api/vsm/system/3/allocations", json=grant))
    ok(await gateway.post("/api/vsm/system/3/audit", json={"agent_ids": agents[:2]}))
    for number in range(5):
        work = {"lane": "observed", "agent_id": agents[1], "command_type": "process_data"}
        ok(await gateway.post("/api/vsm/work", json={**work, "data": {"data": number}}), 202)
    note = {"from_agent": agents[0], "to_agent": agents[1], "topic": "handoff"}
    ok(await gateway.post("/api/vsm/coordination/messages", json=note))


async def steady(gateway: httpx.AsyncClient, everyone: Agents) -> None:
    """Commands to every agent, a chat, an audit, status and a signal, round after round."""
    agents = everyone.workers
    for round_number in itertools.count():
        for agent_id in agents:
            await command(gateway, agent_id, "process_data", {"data": [round_number, agent_id]})
            await command(gateway, agent_id, "analyze", {"values": [1.0, 2.0, round_number]})
        await command(gateway, agents[0], "transform", {"operation": "uppercase", "data": "s1"})
        audit = {"agent_id": agents[-1], "audit_type": "metrics_only"}
        ok(await gateway.post("/api/vsm/audit/bypass", json=audit))
        ok(await gateway.get("/api/vsm/status"))
        if round_number % 5 == 0:
            await chat(gateway, everyone.assistant)
        if round_number % 10 == 0:
            await feel(gateway, "pleasure", 0.3)
        await asyncio.sleep(0.05)
