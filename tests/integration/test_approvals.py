"""Decision rights end to end: the seven services on a real broker, S5 synthesising with the
real `anthropic` client against the fake Messages API, the bot with python-telegram-bot
against the fake Bot API, MCP with the official SDK client.

A policy the governance policy says needs a person waits (the old one stays in force) until
an operator approves it over Telegram, REST or MCP; a rejection or the deadline leaves the
old policy; every decision is on the causal trail naming who decided.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp_types import TextContent

from scripts.localrun import LocalSystem
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_telegram import FakeTelegram
from tests.support.probe import Probe
from tests.support.proposals import s4_proposes
from tests.support.tokens import READ_TOKEN, bearer, mcp_session
from vsm.contract import topology

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MODEL = "claude-approvals"
PERSON = 1001
OPERATOR = 2002
OLD = {"limits": [{"target": "api-1", "max_rate_per_s": 50}]}
NEW = {"policy_type": "throttle", "limits": [{"target": "api-1", "max_rate_per_s": 2.5}]}
LLM_THROTTLES_NEED_APPROVAL = {
    "principles": ["a person approves what a model decides"],
    "approvals": [{"policy_type": "throttle", "authors": ["llm", "s4"]}],
}


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="test-key") as fake:
        yield fake


@pytest.fixture(scope="module")
def system_env(telegram: FakeTelegram, llm: FakeAnthropic) -> dict[str, str]:
    return {
        **telegram.env(),
        **llm.env("test-key"),
        "ANTHROPIC_MODEL": MODEL,
        "LLM_MAX_RETRIES": "0",
        "TELEGRAM_ALLOWED_CHAT_IDS": str(PERSON),
        "TELEGRAM_OPERATOR_CHAT_IDS": str(OPERATOR),
        "TELEGRAM_POLL_TIMEOUT_S": "1",
    }


async def governed(gateway: httpx.AsyncClient, deadline_s: float = 3600) -> str:
    """A new viable system whose governance holds LLM- and S4-made throttles for a person,
    with an operator's throttle in force."""
    vsm_id = f"root/ap{uuid.uuid4().hex[:8]}"
    governance = {**LLM_THROTTLES_NEED_APPROVAL, "approval_deadline_s": deadline_s}
    for kind, policy in (("governance", governance), ("throttle", OLD)):
        stored = await gateway.put(
            f"/api/vsm/policies/{kind}", json={"policy": policy}, params={"vsm_id": vsm_id}
        )
        assert stored.status_code == 200, stored.text
    return vsm_id


async def llm_proposes(gateway: httpx.AsyncClient, llm: FakeAnthropic, vsm_id: str) -> str:
    """S5 synthesises with the LLM; its throttle is held: the approval id."""
    llm.reply_tool_use("propose_policy", {"rationale": "api-1 is slow", "policy": NEW})
    anomaly = {"anomaly_type": "latency", "severity": 0.6, "context": {"agent_id": "api-1"}}
    response = await gateway.post(
        "/api/vsm/system5/synthesis", json=anomaly, params={"vsm_id": vsm_id}, timeout=60
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["llm_outcome"] == "awaiting_approval", result
    assert result["applied"] is None
    assert result["awaiting"]["source"] == f"llm:{MODEL}"
    return str(result["awaiting"]["approval_id"])


async def in_force(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    response = await gateway.get("/api/vsm/policies/throttle", params={"vsm_id": vsm_id})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pending_of(gateway: httpx.AsyncClient, vsm_id: str) -> list[dict[str, Any]]:
    listed = await gateway.get("/api/vsm/approvals")
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json() if a["vsm_id"] == vsm_id]


async def until(check: Any, timeout: float = 20.0) -> Any:
    for _ in range(int(timeout / 0.2)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("not within the time")


async def trace_text(gateway: httpx.AsyncClient, message_id: str) -> str:
    async def traced() -> str | None:
        response = await gateway.get(f"/api/vsm/trace/{message_id}")
        return str(response.json()["text"]) if response.status_code == 200 else None

    return str(await until(traced))


async def test_an_llm_throttle_waits_until_an_operator_approves_it_over_telegram(
    system: LocalSystem, gateway: httpx.AsyncClient, llm: FakeAnthropic, telegram: FakeTelegram
) -> None:
    vsm_id = await governed(gateway)
    before = len(telegram.sent(OPERATOR))
    approval_id = await llm_proposes(gateway, llm, vsm_id)

    held = await in_force(gateway, vsm_id)
    assert (held["version"], held["source"]) == (1, "operator")  # not in force while it waits
    [listed] = await pending_of(gateway, vsm_id)
    assert listed["approval_id"] == approval_id
    assert listed["why"] == "throttle by llm needs approval"

    [message] = telegram.wait_for_messages(OPERATOR, 1, 30, after=before)
    assert approval_id in message["text"]
    [[approve, reject]] = message["reply_markup"]["inline_keyboard"]
    assert (approve["text"], reject["text"]) == ("Approve", "Reject")

    answered = len(telegram.calls_to("answerCallbackQuery"))
    telegram.press(PERSON, message["message_id"], approve["callback_data"])  # not an operator
    telegram.wait_until(lambda: len(telegram.calls_to("answerCallbackQuery")) > answered)
    refusal = telegram.calls_to("answerCallbackQuery")[-1].params
    assert refusal["text"] == "Only operators can approve or reject."
    assert [a["approval_id"] for a in await pending_of(gateway, vsm_id)] == [approval_id]
    assert (await in_force(gateway, vsm_id))["version"] == 1

    telegram.press(OPERATOR, message["message_id"], approve["callback_data"])

    async def adopted() -> dict[str, Any] | None:
        record = await in_force(gateway, vsm_id)
        return record if record["version"] == 2 else None

    record = await until(adopted)
    assert record["source"] == f"llm:{MODEL}"
    assert record["policy"]["limits"][0]["max_rate_per_s"] == 2.5
    assert "approved by telegram:operator" in record["reason"]
    assert await pending_of(gateway, vsm_id) == []
    telegram.wait_until(lambda: "Approved by" in telegram.sent(OPERATOR)[-1]["text"], timeout=15)

    text = await trace_text(gateway, record["causation"][-1])
    assert f"approval {approval_id} requested: throttle by llm:{MODEL}" in text
    assert f"approval {approval_id} approved by telegram:operator" in text
    assert "policy throttle v2" in text
    again = await gateway.post(f"/api/vsm/approvals/{approval_id}", json={"decision": "reject"})
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "approval_closed"


async def test_a_rejection_leaves_the_old_policy_and_is_on_the_trail(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm_id = await governed(gateway)
    await s4_proposes(system_probe, vsm_id, NEW, "S4 would slow api-1")
    [proposal] = await until(lambda: pending_of(gateway, vsm_id))
    assert proposal["source"] == "s4:defensive"

    rejected = await gateway.post(
        f"/api/vsm/approvals/{proposal['approval_id']}",
        json={"decision": "reject", "note": "too tight"},
    )

    assert rejected.status_code == 200, rejected.text
    decided = rejected.json()
    assert decided["approval"]["status"] == "rejected"
    assert decided["approval"]["decided_by"].startswith("api:")
    assert decided["record"] is None
    assert (await in_force(gateway, vsm_id))["version"] == 1
    assert await pending_of(gateway, vsm_id) == []


async def test_an_unanswered_proposal_expires_and_the_old_policy_stays(
    gateway: httpx.AsyncClient, llm: FakeAnthropic, system_probe: Probe
) -> None:
    decided = await system_probe.bind_queue(
        "test.approvals.decided", topology.OPERATORS.name, "approval.decided.expired"
    )
    vsm_id = await governed(gateway, deadline_s=1)
    approval_id = await llm_proposes(gateway, llm, vsm_id)

    await until(lambda: _gone(gateway, vsm_id))

    message = json.loads((await system_probe.get(decided, timeout=15)).body)
    assert message["data"]["approval_id"] == approval_id
    assert message["data"]["by"] == "s5:deadline"
    assert (await in_force(gateway, vsm_id))["version"] == 1
    late = await gateway.post(f"/api/vsm/approvals/{approval_id}", json={"decision": "approve"})
    assert late.status_code == 409, late.text
    assert late.json()["error"] == "approval_closed"
    text = await trace_text(gateway, message["id"])
    assert f"approval {approval_id} expired by s5:deadline" in text


async def _gone(gateway: httpx.AsyncClient, vsm_id: str) -> bool:
    return await pending_of(gateway, vsm_id) == []


async def test_bad_decisions_are_refused_with_a_clear_error(
    system: LocalSystem, gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    unknown = await gateway.post("/api/vsm/approvals/ap-000000000000", json={"decision": "approve"})
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"] == "approval_not_found"

    vsm_id = await governed(gateway)
    await s4_proposes(system_probe, vsm_id, NEW, "S4 would slow api-1")
    [proposal] = await until(lambda: pending_of(gateway, vsm_id))
    route = f"/api/vsm/approvals/{proposal['approval_id']}"
    bad = await gateway.post(route, json={"decision": "maybe"})
    assert bad.status_code == 422, bad.text
    assert "decision" in {f["field"] for f in bad.json()["fields"]}
    extra = await gateway.post(route, json={"decision": "approve", "by": "someone else"})
    assert extra.status_code == 422, extra.text
    async with httpx.AsyncClient(
        base_url=system.url("mcp-gateway"), headers=bearer(READ_TOKEN)
    ) as reader:
        assert (await reader.get("/api/vsm/approvals")).status_code == 200
        forbidden = await reader.post(route, json={"decision": "approve"})
    assert forbidden.status_code == 403, forbidden.text
    assert [a["approval_id"] for a in await pending_of(gateway, vsm_id)] == [
        proposal["approval_id"]
    ]
    assert (await in_force(gateway, vsm_id))["version"] == 1


def _text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_operators_list_and_decide_over_mcp(
    system: LocalSystem, gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm_id = await governed(gateway)
    await s4_proposes(system_probe, vsm_id, NEW, "S4 would slow api-1")
    [proposal] = await until(lambda: pending_of(gateway, vsm_id))
    url = f"{system.url('mcp-gateway')}/mcp"
    arguments = {"approval_id": proposal["approval_id"], "decision": "approve"}

    async with mcp_session(url, READ_TOKEN) as reader:
        listed = await reader.call_tool("vsm_approvals", {})
        assert not listed.is_error, _text(listed)
        assert proposal["approval_id"] in {
            a["approval_id"] for a in (listed.structured_content or {})["approvals"]
        }
        refused = await reader.call_tool("vsm_decide_approval", arguments)
        assert refused.is_error
        assert _text(refused).startswith("forbidden:")
    async with mcp_session(url) as operator:
        approved = await operator.call_tool("vsm_decide_approval", arguments)
        assert not approved.is_error, _text(approved)
        reply = approved.structured_content or {}
        assert reply["approval"]["status"] == "approved"
        assert reply["approval"]["decided_by"].startswith("mcp:")
        assert reply["record"]["version"] == 2
        again = await operator.call_tool("vsm_decide_approval", arguments)
        assert again.is_error
        assert "approval_closed" in _text(again)
    record = await in_force(gateway, vsm_id)
    assert (record["version"], record["source"]) == (2, "s4:defensive")
