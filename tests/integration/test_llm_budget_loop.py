"""The closed loop for LLM cost, end to end on the real broker with all seven services and the
real `anthropic` client against the fake Messages API, which counts the calls it served.

A viable system gets a daily LLM budget in USD; S3 gives each of its two llm_workers a share.
A burst of chats pushes the busy one past 80% of its share: S3 feels pain (`budget`) and
moves the idle one's unspent share to it, operators get a warning; S5 answers by its rules
with a throttle, S3 makes it an allocation with a rate, the spend rate falls, the pain
decays and viability recovers. Pushed on, the busy agent's calls fail with
`llm_budget_exhausted` unsent: the fake server served no call beyond the cap, and operators
get a critical alert. The chain is rebuilt from causation ids by `GET /api/vsm/trace/{id}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.closed_loop import LOOP_ENV, Seen, Watch
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.system import LocalSystem
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.policy import PolicyChanged
from vsm.contract.system5 import InterventionOpened, InterventionResolved, OperatorAlert
from vsm.kit.bus import AnyEnvelope

pytestmark = pytest.mark.timeout(300)

HAIKU = "claude-haiku-4-5"
USAGE = {"input_tokens": 1000, "output_tokens": 100}
CALL_USD = (1000 * 1 + 100 * 5) / 1e6
"""What each chat costs at Haiku's prices: 0.0015 USD."""
CAP_USD = 0.15
"""The system's daily cap: 100 chats. The busy agent's first share is half of it (50 chats),
the idle one's a quarter; 80% of the busy one's share is 40 chats."""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        server.default_usage = USAGE
        yield server


@pytest.fixture(scope="module")
def system_env(fake: FakeAnthropic) -> dict[str, str]:
    return {**LOOP_ENV, "HEADROOM_INTERVAL": "1", "LLM_MAX_RETRIES": "0", **fake.env()}


def served(fake: FakeAnthropic, marker: str, since: float = 0.0, until: float = 1e12) -> int:
    """Messages API calls the fake served for chats carrying `marker`, between two times."""
    return len(
        [
            r
            for r in fake.requests
            if r.path == "/v1/messages" and marker in str(r.body) and since <= r.at < until
        ]
    )


async def spawn(gateway: httpx.AsyncClient, vsm_id: str) -> str:
    config = {"model": HAIKU, "max_tokens": 100, "allocation": 4, "max_allocation": 4}
    body = {"type": "llm_worker", "config": config}
    spawned = await gateway.post("/api/vsm/agents", json=body, params={"vsm_id": vsm_id})
    assert spawned.status_code == 201, spawned.text
    return str(spawned.json()["agent_id"])


async def share_of(gateway: httpx.AsyncClient, agent_id: str) -> float | None:
    audit = {"agent_id": agent_id, "audit_type": "resource_audit"}
    report = (await gateway.post("/api/vsm/audit/bypass", json=audit)).json()["report"]
    return report.get("llm_usd_per_day")


async def burst(system: LocalSystem, agent_id: str, marker: str, outcomes: list[str]) -> None:
    """Chats to the agent, two at a time, each in a new conversation, until cancelled."""

    async def one_after_another() -> None:
        async with gateway_client(system, timeout=60) as client:
            while True:
                body = {"type": "chat", "data": {"message": f"{marker} {secrets.token_hex(4)}"}}
                body["timeout_s"] = 50
                try:
                    reply = await client.post(f"/api/vsm/agents/{agent_id}/command", json=body)
                    answer = reply.json()
                except (httpx.HTTPError, ValueError):
                    outcomes.append("no_answer")
                    continue
                error = answer.get("error") or {}
                outcomes.append(error.get("code") or answer.get("status", "?"))

    await asyncio.gather(one_after_another(), one_after_another())


async def viability_of(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any] | None:
    reply = await gateway.get("/api/vsm/system/5", params={"vsm_id": vsm_id})
    return dict(reply.json()["viability"]) if reply.status_code == 200 else None


async def sample_viability(
    system: LocalSystem, vsm_id: str, samples: list[tuple[float, dict[str, Any]]]
) -> None:
    """S5's viability of `vsm_id` twice a second, with the time it was read, until cancelled."""
    async with gateway_client(system, timeout=10) as client:
        while True:
            reading = await viability_of(client, vsm_id)
            if reading is not None and reading["score"] is not None:
                samples.append((time.monotonic(), reading))
            await asyncio.sleep(0.5)


def terms(reading: dict[str, Any]) -> dict[str, float | None]:
    return {term["name"]: term["value"] for term in reading["terms"]}


async def system3(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    reply = await gateway.get("/api/vsm/system/3", params={"vsm_id": vsm_id})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def of_agent(watch: Watch, agent_id: str, since: float = 0.0) -> list[Seen]:
    return [s for s in watch.of(AllocationChanged.TYPE, since) if s.data["agent_id"] == agent_id]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_spending_past_80_percent_is_pain_answered_by_rules_and_the_cap_holds(
    system: LocalSystem, gateway: httpx.AsyncClient, system_probe: Probe, fake: FakeAnthropic
) -> None:
    vsm_id = f"root/spend-{secrets.token_hex(3)}"
    budget = {"concurrency_slots": 16, "memory_mb": 4096, "llm_usd_per_day": CAP_USD}
    put = await gateway.put("/api/vsm/system/3/budget", json=budget, params={"vsm_id": vsm_id})
    assert put.status_code == 200, put.text
    busy, idle = await spawn(gateway, vsm_id), await spawn(gateway, vsm_id)

    async def shares() -> bool:
        held = (await share_of(gateway, busy), await share_of(gateway, idle))
        return held == (CAP_USD / 2, CAP_USD / 4)

    await eventually(shares, timeout=30, what="each agent's first share of the budget")
    watch = Watch(system_probe)
    await watch.start(busy)
    alerts = await system_probe.bind_queue(
        f"test.budget-alerts.{secrets.token_hex(3)}", topology.OPERATORS.name, "alert.#"
    )
    marker = f"spend-{secrets.token_hex(4)}"
    outcomes: list[str] = []
    started = time.monotonic()
    driver = asyncio.create_task(burst(system, busy, marker, outcomes))
    readings: list[tuple[float, dict[str, Any]]] = []
    sampler = asyncio.create_task(sample_viability(system, vsm_id, readings))
    try:
        # 1. Past 80% of its share: pain, reason budget, from S3 about the busy agent.
        async def budget_pain() -> Seen | None:
            pains = watch.of(AlgedonicSignal.TYPE, started)
            return next((s for s in pains if s.data["reason"] == "budget"), None)

        pain = await eventually(budget_pain, timeout=60, interval=0.1, what="budget pain")
        assert pain.data["context"]["agent_id"] == busy
        assert pain.envelope["vsmid"] == vsm_id
        assert pain.data["context"]["spent_usd"] >= 0.8 * CAP_USD / 2 - 1e-9
        opened = await watch.first(InterventionOpened.TYPE, pain.at)
        assert opened.envelope["causationid"] == pain.envelope["id"]

        # 2. S5's rules throttle the busy agent; S3 makes it an allocation with a rate.
        async def throttle() -> Seen | None:
            for seen in watch.of(PolicyChanged.TYPE, pain.at):
                record = seen.data["record"]
                limits = record["policy"].get("limits", []) if record["policy_type"] else []
                if record["policy_type"] == "throttle" and busy in {x["target"] for x in limits}:
                    return seen
            return None

        policy = await eventually(throttle, timeout=30, what="a throttle on the busy agent")
        assert policy.envelope["causationid"] == opened.envelope["id"]
        assert policy.data["record"]["source"] == "rules"

        async def limited() -> Seen | None:
            return next(
                (s for s in of_agent(watch, busy, policy.at) if s.data["max_rate_per_s"]), None
            )

        allocation = await eventually(limited, timeout=30, what="the throttle as an allocation")
        assert allocation.envelope["causationid"] == policy.envelope["id"]
        rate = allocation.data["max_rate_per_s"]

        # 3. S3 moved the idle agent's unspent share to the busy one, caused by the pain.
        moved = [
            s
            for s in of_agent(watch, busy, started)
            if s.envelope["causationid"] == pain.envelope["id"]
        ]
        assert moved, watch.story(started)
        assert moved[0].data["resources"]["llm_usd_per_day"] > CAP_USD / 2
        idle_share = await share_of(gateway, idle)
        assert idle_share is not None
        assert idle_share < CAP_USD / 4

        # 4. The spend rate falls: the fake serves the busy agent at the throttled rate at most,
        # until the throttle is lifted.
        await asyncio.sleep(5)
        lifted = [s for s in of_agent(watch, busy, allocation.at) if not s.data["max_rate_per_s"]]
        window = (allocation.at + 1, lifted[0].at if lifted else allocation.at + 5)
        assert window[1] - window[0] >= 2, watch.story(started)
        before = served(fake, marker, started, pain.at) / (pain.at - started)
        after = served(fake, marker, *window) / (window[1] - window[0])
        print(f"\nspend {before * CALL_USD:.5f} USD/s before, {after * CALL_USD:.5f} throttled")
        assert after <= rate * 1.3 + 0.5
        assert after < before / 2

        # 5. The pain decays, the episode resolves, viability recovers.
        resolved = await watch.first(InterventionResolved.TYPE, pain.at, timeout=60)
        assert resolved.data["intervention_id"] == opened.data["intervention_id"]

        painful = [r for at, r in readings if pain.at <= at <= resolved.at]
        assert painful, "no viability read during the episode"
        worst = min(painful, key=lambda r: r["score"])

        async def recovered() -> dict[str, Any] | None:
            latest = readings[-1][1] if readings[-1][0] > resolved.at else None
            better = latest is not None and latest["score"] >= worst["score"] + 0.05
            return latest if better else None

        healed = await eventually(recovered, timeout=30, what="viability recovered")
        print(f"viability {worst['score']} {terms(worst)} in the episode")
        print(f"viability {healed['score']} {terms(healed)} after it")
        assert terms(healed)["algedonic_balance"] > terms(worst)["algedonic_balance"]
        episode = opened.data["intervention_id"]
        changes = [
            s
            for s in watch.of(PolicyChanged.TYPE)
            if s.data["record"]["intervention_id"] == episode
        ]
        assert len(changes) <= 2

        # 6. Pushed on, the busy agent reaches its share: calls fail, unsent.
        async def refused() -> bool:
            return outcomes.count("llm_budget_exhausted") >= 3

        await eventually(refused, timeout=150, what="calls refused at the cap")
    finally:
        await stop(driver)
        await stop(sampler)
        await watch.stop()

    calls = served(fake, marker)
    state = await system3(gateway, vsm_id)
    spent = {a["agent_id"]: a["llm_spent_today_usd"] for a in state["allocations"]}
    held = {a["agent_id"]: a["resources"]["llm_usd_per_day"] for a in state["allocations"]}
    print(f"{calls} calls served, {spent[busy]:.4f} of {held[busy]} USD; system {state['llm']}")
    assert spent[busy] == pytest.approx(calls * CALL_USD)
    assert calls * CALL_USD <= held[busy] + 1e-9
    assert calls * CALL_USD <= CAP_USD
    assert state["llm"]["spent_usd"] <= state["llm"]["cap_usd"] == CAP_USD
    assert state["llm"]["headroom_usd"] == pytest.approx(CAP_USD - state["llm"]["spent_usd"])

    # Operators heard of it at 80% and when the share was exhausted.
    severities: dict[str, set[str]] = {}
    with contextlib.suppress(TimeoutError):
        while len(severities.get(busy, ())) < 2:
            message = await system_probe.get(alerts, timeout=10)
            alert = AnyEnvelope.validate_json(message.body).data
            assert isinstance(alert, OperatorAlert)
            if alert.intervention_id == f"budget-{busy}":
                severities.setdefault(busy, set()).add(alert.severity)
    assert severities.get(busy) == {"warning", "critical"}

    # The chain, from the pain: the intervention, the throttle, the allocations it caused.
    trace = (await gateway.get(f"/api/vsm/trace/{pain.envelope['id']}")).json()
    order = [step["id"] for step in trace["chain"]]
    expected = [pain, opened, policy, allocation]
    positions = [order.index(seen.envelope["id"]) for seen in expected]
    assert positions == sorted(positions), trace["text"]
    assert moved[0].envelope["id"] in order, trace["text"]
    print(trace["text"])
