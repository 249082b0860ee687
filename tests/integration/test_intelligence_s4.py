"""S4 on the real broker: anomalies raise one alert with evidence (explained by the LLM),
high variety makes check_meta_system_need recommend a meta-system, scans, proposals, status."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import (
    ADAPTATION_REQUEST_KEY,
    READINESS_KEY,
    AdaptationProposal,
    AdaptationReadiness,
    AdaptationRequest,
)
from vsm.contract.envelope import Envelope
from vsm.contract.intelligence import (
    SCAN_REQUEST_KEY,
    AlertExplanation,
    IntelligenceAlert,
    MetaSystemNeed,
    MetaSystemNeedQuery,
    Observation,
    ScanRequest,
    ScanResult,
    observation_key,
)
from vsm.contract.message import Message
from vsm.contract.operations import CommandResult
from vsm.contract.performance import UnitPerformance, performance_key
from vsm.contract.policy import Policy
from vsm.contract.system5 import ProposalVerdict, verdict_key

pytestmark = pytest.mark.integration

ANY = TypeAdapter(Envelope[Message])
EXPLANATION = "Load on the unit jumped; most likely a burst of work arrived at once."


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(default_reply=EXPLANATION) as fake:
        yield fake


@pytest.fixture(scope="module")
def system_env(fake_llm: FakeAnthropic) -> dict[str, str]:
    """S4 scans and reports readiness every second, with an LLM."""
    return {**fake_llm.env(), "SCAN_INTERVAL": "1", "READINESS_INTERVAL": "1"}


async def collect(
    probe: Probe, queue: str, want: Callable[[Envelope[Any]], bool], seconds: float
) -> list[Envelope[Any]]:
    """Every envelope on `queue` that `want`s, read for `seconds`."""
    found: list[Envelope[Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await probe.get(queue, timeout=left)
        except TimeoutError:
            break
        envelope = ANY.validate_json(message.body)
        if want(envelope):
            found.append(envelope)
    return found


async def first(
    probe: Probe, queue: str, want: Callable[[Envelope[Any]], bool], timeout: float = 15.0
) -> Envelope[Any]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        envelope = ANY.validate_json((await probe.get(queue, timeout=left)).body)
        if want(envelope):
            return envelope
    raise AssertionError(f"nothing wanted arrived on {queue} within {timeout:g}s")


def performance(agent: str, actuality: float) -> UnitPerformance:
    return UnitPerformance(
        agent_id=agent,
        agent_type="worker",
        window_s=5,
        actuality=actuality,
        capability=20,
        potentiality=40,
        succeeded=10,
        failed=0,
    )


async def test_an_injected_anomaly_raises_one_alert_with_evidence_then_its_explanation(
    system_probe: Probe, fake_llm: FakeAnthropic
) -> None:
    agent = f"probe-{secrets.token_hex(3)}"
    series = f"operations/{agent}.actuality"
    alerts = await system_probe.bind_queue(
        f"test.alerts.{agent}", topology.INTELLIGENCE.name, "alert.*"
    )
    normal = [10.0, 10.4, 9.7, 10.2, 9.9, 10.3, 9.6, 10.1, 10.0, 9.8, 10.2, 9.9, 10.1, 10.3, 9.7]
    key = performance_key(agent)
    for value in normal:
        await system_probe.bus.publish(topology.CONTROL, performance(agent, value), routing_key=key)
    spike = await system_probe.bus.publish(
        topology.CONTROL, performance(agent, 60.0), routing_key=key
    )
    for value in [61.0, 10.0, 9.9, 10.1]:  # the episode goes on, then ends: still one alert
        await system_probe.bus.publish(topology.CONTROL, performance(agent, value), routing_key=key)

    seen = await collect(system_probe, alerts, lambda e: True, seconds=6)

    raised = [e for e in seen if isinstance(e.data, IntelligenceAlert) and e.data.series == series]
    assert len(raised) == 1, [e.data for e in seen]
    alert = raised[0]
    assert alert.causation_id == spike.id
    assert alert.data.kind == "anomaly"
    assert alert.data.source == f"operations/{agent}"
    evidence = alert.data.evidence
    assert evidence["detector"] == "ewma_zscore"
    assert evidence["value"] == 60.0
    assert 9.5 < evidence["mean"] < 10.5
    assert evidence["z"] >= evidence["threshold"]
    assert evidence["window"][-1] == 60.0
    explained = [
        e
        for e in seen
        if isinstance(e.data, AlertExplanation) and e.data.alert_id == alert.data.alert_id
    ]
    assert len(explained) == 1
    assert explained[0].causation_id == alert.id
    assert explained[0].data.explanation == EXPLANATION
    asked = [r for r in fake_llm.requests if series in str(r.messages)]
    assert asked, "S4 never asked the LLM about the alert"


async def test_a_high_variety_stream_makes_check_meta_system_need_recommend_a_meta_system(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    calm = await system_probe.bus.request(
        "intelligence", "check_meta_system_need", MetaSystemNeedQuery()
    )
    assert isinstance(calm.data, MetaSystemNeed)
    assert not calm.data.recommended
    alerts = await system_probe.bind_queue(
        "test.variety-alerts", topology.INTELLIGENCE.name, "alert.warning"
    )

    for i in range(480):
        seen = Observation(source=f"radar-{i % 16}", event_type=f"market.signal-{i % 40}")
        await system_probe.bus.publish(
            topology.INTELLIGENCE, seen, routing_key=observation_key(seen.source)
        )

    deadline = time.monotonic() + 20
    need: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await gateway.get("/api/vsm/system/4/meta-system-need")
        assert response.status_code == 200, response.text
        need = response.json()
        if need["recommended"]:
            break
        await asyncio.sleep(0.2)
    assert need["recommended"], need
    assert need["score"] >= need["threshold"]
    assert set(need["factors"]) == {"variety", "rate", "sources", "anomalies"}
    assert need["factors"]["variety"] == 1.0
    assert need["variety"]["distinct_types"] >= 40
    assert any("recommend a meta-system" in reason for reason in need["reasons"])
    over_amqp = await system_probe.bus.request(
        "intelligence", "check_meta_system_need", MetaSystemNeedQuery()
    )
    assert over_amqp.data.recommended
    variety_alert = await first(
        system_probe,
        alerts,
        lambda e: isinstance(e.data, IntelligenceAlert) and e.data.kind == "variety",
    )
    assert variety_alert.data.evidence["score"] >= need["threshold"]


async def test_an_adaptation_request_gets_a_proposal_s5_can_validate(system_probe: Probe) -> None:
    proposals = await system_probe.bind_queue(
        "test.proposals", topology.INTELLIGENCE.name, "adaptation.proposal.*"
    )
    request = AdaptationRequest(
        intervention_id=f"iv-{secrets.token_hex(3)}", trigger="error_burst", pain_level=0.9
    )
    sent = await system_probe.bus.publish(
        topology.INTELLIGENCE, request, routing_key=ADAPTATION_REQUEST_KEY
    )
    proposal = await first(
        system_probe, proposals, lambda e: isinstance(e.data, AdaptationProposal)
    )
    assert proposal.causation_id == sent.id
    assert proposal.data.request_id == request.intervention_id
    assert proposal.data.kind == "defensive"
    assert "error_burst" in proposal.data.rationale
    document = TypeAdapter(Policy).validate_python(
        {**proposal.data.policy, "policy_type": proposal.data.policy_type}
    )
    assert document.policy_type == "adaptation"


async def test_s5_verdicts_are_counted_in_the_status(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    before = (await gateway.get("/api/vsm/system/4")).json()["proposals_rejected"]
    verdict = ProposalVerdict(proposal_id="p-1", accepted=False, policy_type="adaptation")
    await system_probe.bus.publish(topology.INTELLIGENCE, verdict, routing_key=verdict_key(False))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = (await gateway.get("/api/vsm/system/4")).json()
        if status["proposals_rejected"] == before + 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the verdict was not counted: {status}")


async def test_s1_results_and_their_sensor_readings_become_series(
    system_probe: Probe, gateway: httpx.AsyncClient
) -> None:
    before = (await gateway.get("/api/vsm/system/4")).json()["series"]
    result = CommandResult(
        agent_id="sensor-7",
        command_id="c-1",
        command_type="read",
        status="ok",
        result={"temperature": 21.5, "unit": "C"},
        processing_time_ms=2.5,
    )
    await system_probe.bus.publish(
        topology.S1_RESULTS, result, routing_key="sensor.sensor-7.read", mandatory=False
    )
    deadline = time.monotonic() + 10
    while (await gateway.get("/api/vsm/system/4")).json()["series"] != before + 2:
        assert time.monotonic() < deadline, "the S1 result never reached S4"
        await asyncio.sleep(0.1)


async def test_a_scan_request_publishes_a_scan_result_caused_by_it(system_probe: Probe) -> None:
    results = await system_probe.bind_queue("test.scans", topology.INTELLIGENCE.name, "scan.result")
    sent = await system_probe.bus.publish(
        topology.INTELLIGENCE, ScanRequest(reason="test"), routing_key=SCAN_REQUEST_KEY
    )
    result = await first(system_probe, results, lambda e: e.causation_id == sent.id)
    assert isinstance(result.data, ScanResult)
    assert result.data.trigger == "requested"
    assert result.data.reason == "test"
    assert 0 <= result.data.readiness <= 1
    scheduled = await first(
        system_probe, results, lambda e: e.data.trigger == "scheduled", timeout=5
    )
    assert scheduled.causation_id is None


async def test_readiness_is_published_with_its_measured_factors(system_probe: Probe) -> None:
    queue = await system_probe.bind_queue(
        "test.readiness", topology.INTELLIGENCE.name, READINESS_KEY
    )
    report = await first(
        system_probe, queue, lambda e: isinstance(e.data, AdaptationReadiness), timeout=10
    )
    assert {"health", "stability"} <= set(report.data.factors)
    assert report.data.factors["health"] > 0
    assert 0 <= report.data.readiness <= 1


async def test_rest_status_and_scan_of_system_4(gateway: httpx.AsyncClient) -> None:
    status = await gateway.get("/api/vsm/system/4")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["llm"] == "enabled"
    assert body["scans"] >= 1
    assert {"health", "stability"} <= set(body["readiness_factors"])
    scan = await gateway.post("/api/vsm/system/4/scan")
    assert scan.status_code == 200, scan.text
    assert scan.json()["trigger"] == "requested"
    assert scan.json()["reason"] == "rest"
