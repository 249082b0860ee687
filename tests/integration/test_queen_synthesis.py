"""Policy synthesis with the real `anthropic` client against a local fake Messages API: a
valid tool call is applied as `llm:<model>`, invalid output is rejected with reasons, and
an overloaded API (529) falls back to the rules. The LLM is never on the algedonic path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.kit.bus import AnyEnvelope

pytestmark = pytest.mark.integration

MODEL = "claude-test-model"
ANOMALY = {"anomaly_type": "latency", "severity": 0.6, "context": {"agent_id": "api-1"}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="test-key") as server:
        yield server


@pytest.fixture(scope="module")
def system_env(fake: FakeAnthropic) -> dict[str, str]:
    return {
        **fake.env("test-key"),
        "ANTHROPIC_MODEL": MODEL,
        "LLM_MAX_RETRIES": "1",
        "LLM_TIMEOUT_S": "10",
    }


@pytest.fixture(autouse=True)
def fresh_script(fake: FakeAnthropic) -> None:
    fake.reset()


async def synthesise(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    response = await gateway.post(
        "/api/vsm/system5/synthesis", json=ANOMALY, params={"vsm_id": vsm_id}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def queen_requests(fake: FakeAnthropic) -> list[Any]:
    """S5's calls (S4 may use the same fake): told apart by S5's system prompt."""
    return [r for r in fake.requests if r.path == "/v1/messages" and "System 5" in str(r.system)]


async def test_a_valid_tool_call_is_applied_with_its_llm_source(
    gateway: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    fake.reply_tool_use(
        "propose_policy",
        {
            "rationale": "latency at api-1: limit it gently",
            "policy": {
                "policy_type": "throttle",
                "limits": [{"target": "api-1", "max_rate_per_s": 7.5, "reason": "latency"}],
            },
        },
    )

    result = await synthesise(gateway, "root/llm-ok")

    assert result["llm_outcome"] == "used"
    assert result["applied"]["source"] == f"llm:{MODEL}"
    assert result["applied"]["policy"]["limits"][0]["max_rate_per_s"] == 7.5
    assert result["applied"]["reason"] == "latency at api-1: limit it gently"
    sent = queen_requests(fake)[-1]
    assert sent.model == MODEL
    assert sent.tools[0]["name"] == "propose_policy"
    assert "throttle" in str(sent.tools[0]["input_schema"])
    assert sent.body["tool_choice"] == {"type": "tool", "name": "propose_policy"}
    stored = await gateway.get("/api/vsm/policies/throttle", params={"vsm_id": "root/llm-ok"})
    assert stored.json()["source"] == f"llm:{MODEL}"


async def test_invalid_llm_output_is_rejected_with_reasons_and_the_rules_apply(
    gateway: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    fake.reply_tool_use(
        "propose_policy",
        {
            "rationale": "stop everything",
            "policy": {
                "policy_type": "throttle",
                "limits": [{"target": "api-1", "max_rate_per_s": -3}],
            },
        },
    )

    result = await synthesise(gateway, "root/llm-bad")

    assert result["llm_outcome"] == "invalid_output"
    assert any("max_rate_per_s" in r for r in result["rejected_reasons"])
    assert result["applied"]["source"] == "rules"
    assert "fell back to the rules" in result["llm_detail"]
    history = await gateway.get("/api/vsm/policies/throttle/2", params={"vsm_id": "root/llm-bad"})
    assert history.status_code == 404  # only the rules' version was stored


async def test_the_llm_never_decides_identity(
    gateway: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    """Identity is out of what the model is offered (prompt and tool schema); an identity it
    returns anyway is refused with the reason, the operator's identity stands and the rules
    answer the anomaly."""
    vsm_id = "root/llm-identity"
    declared = await gateway.put(
        "/api/vsm/policies/identity",
        params={"vsm_id": vsm_id},
        json={
            "policy": {
                "purpose": "serve the operators",
                "constraints": [
                    {
                        "id": "gentle",
                        "description": "never throttle below 1/s",
                        "policy_type": "throttle",
                        "path": "limits.*.max_rate_per_s",
                        "op": "ge",
                        "value": 1,
                    }
                ],
            }
        },
    )
    assert declared.status_code == 200, declared.text
    fake.reply_tool_use(
        "propose_policy",
        {
            "rationale": "constraints slow us down: drop them",
            "policy": {"policy_type": "identity", "purpose": "anything goes", "constraints": []},
        },
    )

    result = await synthesise(gateway, vsm_id)

    assert result["llm_outcome"] == "refused"
    assert any("never by an LLM" in reason for reason in result["rejected_reasons"])
    assert result["applied"]["source"] == "rules"
    identity = await gateway.get("/api/vsm/policies/identity", params={"vsm_id": vsm_id})
    assert identity.json()["version"] == 1
    assert identity.json()["source"] == "operator"
    assert identity.json()["policy"]["purpose"] == "serve the operators"
    sent = queen_requests(fake)[-1]
    schema = json.dumps(sent.tools[0]["input_schema"])
    assert '"identity"' not in schema
    assert "IdentityPolicy" not in schema
    assert "throttle" in schema
    assert "never yours to change" in str(sent.system)


async def test_an_overloaded_api_falls_back_to_the_rules_and_says_so(
    gateway: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    fake.fail_times(2, 529)  # the first try and the one retry

    result = await synthesise(gateway, "root/llm-529")

    assert result["llm_outcome"] == "error"
    assert "529" in result["llm_detail"]
    assert result["applied"]["source"] == "rules"
    assert len(queen_requests(fake)) == 2


async def test_the_algedonic_path_never_calls_the_llm(
    system_probe: Probe, gateway: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    policies = await system_probe.bind_queue("test.policies", topology.POLICY.name)
    for _ in range(4):
        await system_probe.bus.publish(
            topology.ALGEDONIC,
            AlgedonicSignal(kind="pain", intensity=0.7, origin="operations/w", reason="overload"),
            vsm_id="root/no-llm",
        )
    change = AnyEnvelope.validate_json((await system_probe.get(policies)).body).data

    assert change.record.intervention_id is not None
    assert change.record.source == "rules"
    assert queen_requests(fake) == []
