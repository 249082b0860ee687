"""S5's algedonic loop on the real broker: a pain burst gives one intervention (policy and
adaptation request, with their causes), pain decays, unresolved trouble escalates until an
operator acknowledges it, and bad signals are dead-lettered with nothing applied."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import ADAPTATION_REQUEST_KEY, AdaptationRequest
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping, Pong
from vsm.contract.performance import UnitPerformance, performance_key
from vsm.contract.policy import PolicyChanged
from vsm.contract.system5 import ACK_KEY, AlertAcknowledgement, Escalation, OperatorAlert
from vsm.kit.bus import AnyEnvelope
from vsm.kit.deadletter import REASON_HEADER

pytestmark = pytest.mark.integration

SETTINGS = {
    "ALGEDONIC_HALF_LIFE_S": "4",
    "PAIN_THRESHOLD": "0.7",
    "PAIN_RESOLVED_BELOW": "0.3",
    "ESCALATION_DEADLINE_S": "1",
    "ESCALATION_MAX_LEVELS": "3",
    "MONITOR_INTERVAL_S": "0.1",
}


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return SETTINGS


async def burst(probe: Probe, vsm_id: str, count: int = 4, intensity: float = 0.6) -> list[str]:
    """Pain signals from one worker, as an S1 agent in trouble would send them."""
    ids = []
    for _ in range(count):
        sent = await probe.bus.publish(
            topology.ALGEDONIC,
            AlgedonicSignal(
                kind="pain",
                intensity=intensity,
                origin="operations/worker-7",
                reason="error_burst",
                episode="ep-1",
                context={"agent_id": "worker-7"},
            ),
            vsm_id=vsm_id,
        )
        ids.append(sent.id)
    return ids


async def messages(probe: Probe, queue: str, seconds: float) -> list[Envelope[Any]]:
    """Everything that arrives on `queue` within `seconds`."""
    found = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            found.append(AnyEnvelope.validate_json((await probe.get(queue, timeout=left)).body))
        except TimeoutError:
            break
    return found


async def state(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    response = await gateway.get("/api/vsm/system/5", params={"vsm_id": vsm_id})
    assert response.status_code == 200, response.text
    return response.json()


async def counted(system: LocalSystem, metric: str, vsm_id: str) -> float:
    async with httpx.AsyncClient(base_url=system.url("queen")) as http:
        text = (await http.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(metric + "{") and f'vsm_id="{vsm_id}"' in line
    )


async def test_a_pain_burst_gives_exactly_one_intervention_with_its_causes(
    system: LocalSystem, system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    policies = await system_probe.bind_queue("test.policies", topology.POLICY.name)
    requests = await system_probe.bind_queue(
        "test.adaptation", topology.INTELLIGENCE.name, ADAPTATION_REQUEST_KEY
    )

    signal_ids = await burst(system_probe, "root/burst", count=6)
    changes = await messages(system_probe, policies, seconds=3)
    asked = await messages(system_probe, requests, seconds=0.5)

    assert all(isinstance(c.data, PolicyChanged) for c in changes)
    # S4 may answer the adaptation request with a proposal S5 accepts (source s4:...):
    # that is the loop closing, not a second intervention.
    # One intervention; its throttle may already be lifted again (a second version carrying
    # the same intervention id) once the episode has resolved.
    # (The parent `root` may open one of its own: root/burst's escalation is pain of root.)
    interventions = [
        c
        for c in changes
        if c.data.record.intervention_id is not None and c.data.record.vsm_id == "root/burst"
    ]
    assert len({c.data.record.intervention_id for c in interventions}) == 1, [
        c.data.record for c in changes
    ]
    change = interventions[0]
    record = change.data.record
    assert record.vsm_id == "root/burst"
    assert record.source == "rules"
    assert record.policy_type == "throttle"
    assert record.policy.limits[0].target == "worker-7"
    assert record.intervention_id is not None
    # The policy is caused by the intervention (announced on vsm.interventions), and the
    # intervention by the signals of the episode.
    *signals, opened = record.causation
    assert change.causation_id == opened
    assert signals
    assert set(signals) <= set(signal_ids)
    asked = [a for a in asked if a.vsm_id == "root/burst"]
    assert len(asked) == 1
    assert isinstance(asked[0].data, AdaptationRequest)
    assert asked[0].data.intervention_id == record.intervention_id
    assert asked[0].causation_id == change.causation_id
    s5 = await state(gateway, "root/burst")
    assert [i["intervention_id"] for i in s5["interventions"]] == [record.intervention_id]
    assert await counted(system, "vsm_interventions_total", "root/burst") == 1
    assert await counted(system, "vsm_algedonic_signals_total", "root/burst") == 6


async def test_pain_decays_and_the_episode_resolves(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    await burst(system_probe, "root/decay")
    await asyncio.sleep(0.5)
    first = (await state(gateway, "root/decay"))["algedonic"]
    await asyncio.sleep(1.5)
    later = (await state(gateway, "root/decay"))["algedonic"]

    assert first["pain"] > 0.7
    assert first["episode_open"]
    assert later["pain"] < first["pain"] * 0.85  # half-life 4 s: ~0.77 after 1.5 s
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s5 = await state(gateway, "root/decay")
        if s5["interventions"] and s5["interventions"][0]["status"] == "resolved":
            break
        await asyncio.sleep(0.2)
    assert s5["interventions"][0]["status"] == "resolved", s5
    assert s5["algedonic"]["pain"] < 0.3
    assert not s5["algedonic"]["episode_open"]


async def test_unresolved_trouble_escalates_to_parent_and_operators_until_acknowledged(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    upward = await system_probe.bind_queue(
        "test.escalations", topology.RECURSIVE.name, "escalation.root"
    )
    alerts = await system_probe.bind_queue("test.alerts", topology.OPERATORS.name, "alert.#")

    await burst(system_probe, "root/logistics")
    first = AnyEnvelope.validate_json((await system_probe.get(alerts, timeout=5)).body)
    alert = first.data
    assert isinstance(alert, OperatorAlert)
    assert (alert.severity, alert.escalation_level) == ("warning", 1)
    await system_probe.bus.publish(
        topology.OPERATORS,
        AlertAcknowledgement(alert_id=alert.alert_id, by="test-operator"),
        routing_key=ACK_KEY,
    )
    escalations = await messages(system_probe, upward, seconds=0.5)
    assert escalations
    assert isinstance(escalations[0].data, Escalation)
    assert escalations[0].data.to_vsm_id == "root"
    assert escalations[0].data.intervention_id == alert.intervention_id

    more = await messages(system_probe, alerts, seconds=2.5)  # would be levels 2 and 3
    ours = [m for m in more if m.data.intervention_id == alert.intervention_id]
    assert ours == []
    s5 = await state(gateway, "root/logistics")
    assert s5["interventions"][0]["status"] in ("acknowledged", "resolved")


async def test_without_acknowledgement_escalation_repeats_as_critical(
    system_probe: Probe,
) -> None:
    alerts = await system_probe.bind_queue("test.alerts-2", topology.OPERATORS.name, "alert.#")
    await burst(system_probe, "root/unheard")
    seen = [m.data for m in await messages(system_probe, alerts, seconds=4)]
    levels = [a.escalation_level for a in seen if a.title.startswith("root/unheard")]
    assert levels[:2] == [1, 2]
    assert [a.severity for a in seen if a.escalation_level == 2][:1] == ["critical"]


def raw(message_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"bad-{message_type}",
            "source": "vsm/test",
            "type": message_type,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }
    ).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            raw(
                AlgedonicSignal.TYPE,
                {"kind": "pain", "intensity": 1.5, "origin": "x", "reason": "too_much"},
            ),
            "invalid_schema",
        ),
        (
            raw(
                AlgedonicSignal.TYPE,
                {"kind": "sorrow", "intensity": 0.5, "origin": "x", "reason": "sad"},
            ),
            "invalid_schema",
        ),
        (raw("vsm.algedonic.sorrow.v1", {"intensity": 0.5}), "unknown_type"),
    ],
    ids=["intensity-above-1", "unknown-kind", "unknown-type"],
)
async def test_bad_signals_are_dead_lettered_and_nothing_is_applied(
    system_probe: Probe, gateway: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    policies = await system_probe.bind_queue(f"test.quiet-{reason}", topology.POLICY.name)
    before = (await state(gateway, "root"))["algedonic"]["signals"]

    await system_probe.publish_raw(topology.ALGEDONIC.name, body)
    parked = await system_probe.get(topology.SYSTEM5_ALGEDONIC.dead_letter_queue)

    assert parked.body == body
    assert parked.headers[REASON_HEADER] == reason
    assert parked.headers["x-vsm-dead-lettered-by"] == "queen"
    assert await messages(system_probe, policies, seconds=0.5) == []
    assert (await state(gateway, "root"))["algedonic"]["signals"] == before
    reply = await system_probe.bus.request("queen", "ping", Ping())
    assert isinstance(reply.data, Pong)


async def test_bad_rest_signals_are_refused_before_anything_is_published(
    gateway: httpx.AsyncClient,
) -> None:
    too_strong = await gateway.post("/api/vsm/algedonic/pain", json={"intensity": 2})
    unknown = await gateway.post("/api/vsm/algedonic/sorrow", json={"intensity": 0.5})

    assert too_strong.status_code == 422
    assert "intensity" in too_strong.text
    assert unknown.status_code == 404


async def test_viability_is_measured_with_unknown_terms_left_out(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    await system_probe.bus.publish(
        topology.CONTROL,
        UnitPerformance(
            agent_id="worker-1",
            agent_type="worker",
            window_s=10,
            actuality=4,
            capability=5,
            potentiality=8,
            performance=0.5,
        ),
        routing_key=performance_key("worker-1"),
        vsm_id="root/measured",
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # 404 until S5 has measured something of root/measured (a query creates nothing)
        response = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root/measured"})
        s5 = response.json()
        if response.status_code == 200 and s5["viability"]["score"] is not None:
            break
        await asyncio.sleep(0.1)
    terms = {t["name"]: t["value"] for t in s5["viability"]["terms"]}

    assert terms["s1_performance"] == 0.5
    assert terms["s2_stability"] is None
    assert terms["s3_headroom"] is None
    assert s5["viability"]["score"] == 0.5
    assert s5["viability"]["coverage"] == 0.3
    status = (await gateway.get("/api/vsm/status")).json()
    assert "viability" in status
    assert "viability_coverage" in status


async def test_synthesis_without_a_key_uses_the_rules_and_says_so(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post(
        "/api/vsm/system5/synthesis",
        json={"anomaly_type": "latency", "severity": 0.4, "context": {"agent_id": "api-1"}},
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["llm_outcome"] == "not_configured"
    assert result["applied"]["source"] == "rules"
    assert result["applied"]["policy"]["policy_type"] == "throttle"
