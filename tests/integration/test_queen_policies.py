"""S5's policy store on the real broker: versions, diffs, identity, errors, S4 proposals,
decisions, and a store that survives a restart of the queen."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, proposal_key
from vsm.contract.policy import PolicyChanged, StorePolicy
from vsm.contract.system5 import ProposalVerdict
from vsm.kit.bus import AnyEnvelope, RequestFailed

pytestmark = pytest.mark.integration

GOVERNANCE_V1 = {"principles": ["viability first"], "decision_rights": {"budget": "S3"}}
GOVERNANCE_V2 = {
    "principles": ["viability first", "people before throughput"],
    "decision_rights": {"budget": "S5", "hiring": "operator"},
}


async def put(gateway: httpx.AsyncClient, path: str, policy: dict[str, Any]) -> httpx.Response:
    return await gateway.put(path, json={"policy": policy, "reason": "test"})


async def test_storing_twice_gives_version_2_and_a_correct_diff(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    observed = await system_probe.bind_queue("test.policy-changes", topology.POLICY.name)
    first = await put(gateway, "/api/vsm/policies/governance", GOVERNANCE_V1)
    second = await put(gateway, "/api/vsm/policies/governance", GOVERNANCE_V2)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert second.json()["source"] == "operator"
    diff = await gateway.get("/api/vsm/policies/governance/diff", params={"from": 1, "to": 2})
    assert diff.status_code == 200, diff.text
    assert diff.json()["added"] == {
        "principles.1": "people before throughput",
        "decision_rights.hiring": "operator",
    }
    assert diff.json()["removed"] == {}
    assert diff.json()["changed"] == {"decision_rights.budget": {"before": "S3", "after": "S5"}}
    v1 = await gateway.get("/api/vsm/policies/governance/1")
    assert v1.json()["policy"]["principles"] == ["viability first"]
    listing = await gateway.get("/api/vsm/policies")
    latest = {p["policy_type"]: p["latest_version"] for p in listing.json()["policies"]}
    assert latest["governance"] == 2

    broadcast = [
        AnyEnvelope.validate_json((await system_probe.get(observed)).body) for _ in range(2)
    ]
    assert all(isinstance(e.data, PolicyChanged) for e in broadcast)
    assert [e.data.record.version for e in broadcast] == [1, 2]
    assert broadcast[1].source == "vsm/queen"
    assert broadcast[1].causation_id is not None  # the gateway's request caused it
    assert broadcast[1].data.record.causation[-1] == broadcast[1].causation_id


async def test_a_missing_version_or_policy_is_a_clear_404(gateway: httpx.AsyncClient) -> None:
    await put(
        gateway,
        "/api/vsm/policies/adaptation",
        {"mode": "incremental", "actions": ["watch"], "rationale": "test"},
    )
    missing_version = await gateway.get("/api/vsm/policies/adaptation/99")
    missing_policy = await gateway.get("/api/vsm/policies/resource_allocation/1")
    unknown_type = await gateway.get("/api/vsm/policies/astrology/1")

    assert missing_version.status_code == 404
    assert missing_version.json()["error"] == "policy_version_not_found"
    assert "99" in missing_version.json()["message"]
    assert missing_policy.status_code == 404
    assert missing_policy.json()["error"] == "policy_not_found"
    assert unknown_type.status_code == 404
    assert "astrology" in unknown_type.text


async def test_a_policy_breaking_the_schema_is_refused_with_reasons_and_not_applied(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    good = await put(
        gateway,
        "/api/vsm/policies/resource_allocation",
        {"shares": {"a": 0.5, "b": 0.4}, "reserve": 0.1},
    )
    assert good.status_code == 200, good.text

    bad = await put(
        gateway,
        "/api/vsm/policies/resource_allocation",
        {"shares": {"a": 0.9, "b": 0.4}, "reserve": 0.1, "bonus": True},
    )

    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_policy"
    reasons = bad.json()["details"]["reasons"]
    assert any("bonus" in r for r in reasons)
    latest = await gateway.get("/api/vsm/policies/resource_allocation")
    assert latest.json()["version"] == good.json()["version"]
    with pytest.raises(RequestFailed) as failed:  # the same over AMQP
        await system_probe.bus.request(
            "queen", "policy.store", StorePolicy(policy_type="throttle", policy={"limits": 3})
        )
    assert failed.value.reply.code == "invalid_policy"


async def test_identity_is_queryable_and_policies_contradicting_it_are_refused(
    gateway: httpx.AsyncClient,
) -> None:
    identity = {
        "purpose": "move parcels reliably",
        "values": ["reliability"],
        "constraints": [
            {
                "id": "never-starve",
                "description": "no agent is throttled below 1 request per second",
                "policy_type": "throttle",
                "path": "limits.*.max_rate_per_s",
                "op": "ge",
                "value": 1.0,
            }
        ],
    }
    declared = await put(gateway, "/api/vsm/identity", identity)
    assert declared.status_code == 200, declared.text
    fetched = await gateway.get("/api/vsm/identity")
    assert fetched.json()["policy"]["purpose"] == "move parcels reliably"

    fine = await put(
        gateway,
        "/api/vsm/policies/throttle",
        {"limits": [{"target": "worker-1", "max_rate_per_s": 2}]},
    )
    starving = await put(
        gateway,
        "/api/vsm/policies/throttle",
        {"limits": [{"target": "worker-1", "max_rate_per_s": 0.5}]},
    )

    assert fine.status_code == 200, fine.text
    assert starving.status_code == 422
    assert starving.json()["error"] == "invalid_against_identity"
    assert "never-starve" in starving.json()["details"]["reasons"][0]
    latest = await gateway.get("/api/vsm/policies/throttle")
    assert latest.json()["version"] == fine.json()["version"]


async def test_bad_rest_input_is_a_4xx_naming_the_field(gateway: httpx.AsyncClient) -> None:
    no_policy = await gateway.put("/api/vsm/policies/governance", json={"reason": "x"})
    bad_decision = await gateway.post(
        "/api/vsm/system5/decision", json={"decision_type": "coin_toss"}
    )
    bad_vsm = await gateway.get("/api/vsm/policies", params={"vsm_id": "Not A Path"})

    assert no_policy.status_code == 422
    assert bad_decision.status_code == 422
    assert "decision_type" in json.dumps(bad_decision.json())
    assert bad_vsm.status_code == 422


async def test_a_decision_comes_with_reasoning_and_steps(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/vsm/system5/decision",
        json={"decision_type": "resource_allocation", "context": {"demands": {"a": 3, "b": 1}}},
    )

    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["decision_type"] == "resource_allocation"
    assert decision["reasoning"]
    assert decision["steps"]
    assert "a" in decision["steps"][0]


async def test_s4_proposals_are_accepted_as_policy_or_rejected_with_reasons(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    verdicts = await system_probe.bind_queue(
        "test.verdicts", topology.INTELLIGENCE.name, "adaptation.verdict.*"
    )
    good = AdaptationProposal(
        proposal_id="p-good",
        kind="defensive",
        rationale="errors rising",
        policy_type="adaptation",
        policy={"mode": "defensive", "actions": ["shed load"], "rationale": "errors rising"},
        confidence=0.8,
    )
    bad = AdaptationProposal(
        proposal_id="p-bad",
        kind="incremental",
        rationale="?",
        policy_type="adaptation",
        policy={"mode": "sideways", "actions": []},
        confidence=0.3,
    )
    await system_probe.bus.publish(
        topology.INTELLIGENCE, good, routing_key=proposal_key("defensive")
    )
    await system_probe.bus.publish(
        topology.INTELLIGENCE, bad, routing_key=proposal_key("incremental")
    )

    answers = {}
    for _ in range(2):
        verdict = AnyEnvelope.validate_json((await system_probe.get(verdicts)).body).data
        assert isinstance(verdict, ProposalVerdict)
        answers[verdict.proposal_id] = verdict
    assert answers["p-good"].accepted
    assert answers["p-good"].version is not None
    assert not answers["p-bad"].accepted
    assert any("mode" in r for r in answers["p-bad"].reasons)
    latest = await gateway.get("/api/vsm/policies/adaptation")
    assert latest.json()["source"] == "s4:defensive"
    assert latest.json()["version"] == answers["p-good"].version


async def test_the_store_survives_a_restart_of_the_queen(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    """Last in the module: it restarts the queen of the shared system."""
    await put(gateway, "/api/vsm/policies/governance", {"principles": ["after restart?"]})
    before = (await gateway.get("/api/vsm/policies")).json()

    system.kill("queen", signal.SIGTERM)
    system.processes["queen"].wait(timeout=15)
    system.start(["queen"])
    system.wait_ready(timeout=30, services=["queen"])

    after = await gateway.get("/api/vsm/policies")
    assert after.status_code == 200, after.text
    assert after.json() == before
    v1 = await gateway.get("/api/vsm/policies/governance/1")
    assert v1.json()["policy"]["principles"] == ["viability first"]
    identity = await gateway.get("/api/vsm/identity")
    assert identity.json()["policy"]["purpose"] == "move parcels reliably"
