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
import functools
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.budget_loop import (
    CALL_USD,
    CAP_USD,
    COST_ENV,
    allocations_of,
    budget_pain,
    budgeted_pair,
    burst,
    priced,
    served,
    share_of,
    stopped,
    throttle_of,
    until_refused,
)
from tests.support.closed_loop import Watch
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.polling import eventually
from tests.support.probe import Probe
from tests.support.system import LocalSystem
from tests.support.tokens import gateway_client
from vsm.contract import topology
from vsm.contract.system5 import InterventionOpened, InterventionResolved, OperatorAlert
from vsm.kit.bus import AnyEnvelope

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield priced(server)


@pytest.fixture(scope="module")
def system_env(fake: FakeAnthropic) -> dict[str, str]:
    return {**COST_ENV, **fake.env()}


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


async def test_spending_past_80_percent_is_pain_answered_by_rules_and_the_cap_holds(
    system: LocalSystem, gateway: httpx.AsyncClient, system_probe: Probe, fake: FakeAnthropic
) -> None:
    vsm_id, busy, idle = await budgeted_pair(gateway)
    watch = Watch(system_probe)
    await watch.start(busy)
    alerts = await system_probe.bind_queue(
        f"test.budget-alerts.{secrets.token_hex(3)}", topology.OPERATORS.name, "alert.#"
    )
    client = functools.partial(gateway_client, system, timeout=60)
    marker = f"spend-{secrets.token_hex(4)}"
    outcomes: list[str] = []
    readings: list[tuple[float, dict[str, Any]]] = []
    sampler = asyncio.create_task(sample_viability(system, vsm_id, readings))
    started = time.monotonic()
    driver = asyncio.create_task(burst(client, busy, marker, outcomes))
    try:
        # 1. Past 80% of its share: pain, reason budget, from S3 about the busy agent.
        pain = await budget_pain(watch, started)
        assert pain.data["context"]["agent_id"] == busy
        assert pain.envelope["vsmid"] == vsm_id
        assert pain.data["context"]["spent_usd"] >= 0.8 * CAP_USD / 2 - 1e-9
        opened = await watch.first(InterventionOpened.TYPE, pain.at)
        assert opened.envelope["causationid"] == pain.envelope["id"]

        # 2. S5's rules throttle the busy agent; S3 makes it an allocation with a rate.
        policy, allocation = await throttle_of(watch, busy, pain.at)
        assert policy.envelope["causationid"] == opened.envelope["id"]
        assert policy.data["record"]["source"] == "rules"
        assert allocation.envelope["causationid"] == policy.envelope["id"]
        rate = allocation.data["max_rate_per_s"]

        # 3. S3 moved the idle agent's unspent share to the busy one, caused by the pain.
        moved = [
            s
            for s in allocations_of(watch, busy, started)
            if s.envelope["causationid"] == pain.envelope["id"]
        ]
        assert moved, watch.story(started)
        assert moved[0].data["resources"]["llm_usd_per_day"] > CAP_USD / 2
        idle_share = await share_of(gateway, idle)
        assert idle_share is not None
        assert idle_share < CAP_USD / 4

        # 4. The spend rate falls: the fake serves the busy agent at the throttled rate at most.
        await asyncio.sleep(4)
        await stopped(driver)
        window = (allocation.at + 1, allocation.at + 4)
        lifted = [s for s in allocations_of(watch, busy, allocation.at) if s.at < window[1]]
        assert all(s.data["max_rate_per_s"] for s in lifted), watch.story(started)
        before = served(fake, marker, started, pain.at) / (pain.at - started)
        after = served(fake, marker, *window) / (window[1] - window[0])
        print(f"\nspend {before * CALL_USD:.5f} USD/s before, {after * CALL_USD:.5f} throttled")
        assert after <= rate * 1.3 + 0.34
        assert after < before / 2

        # 5. The pain decays, the episode resolves, viability recovers.
        resolved = await watch.first(InterventionResolved.TYPE, pain.at, timeout=60)
        assert resolved.data["intervention_id"] == opened.data["intervention_id"]
        painful = [r for at, r in readings if pain.at <= at <= resolved.at]
        assert painful, "no viability read during the episode"
        worst = min(painful, key=lambda r: r["score"])

        async def recovered() -> dict[str, Any] | None:
            at, latest = readings[-1]
            better = at > resolved.at and latest["score"] >= worst["score"] + 0.05
            return latest if better and latest["viable"] else None

        healed = await eventually(recovered, timeout=30, what="viability recovered")
        print(f"viability {worst['score']} {terms(worst)} in the episode")
        print(f"viability {healed['score']} {terms(healed)} after it")
        assert terms(healed)["algedonic_balance"] > terms(worst)["algedonic_balance"]
        episode = opened.data["intervention_id"]
        changes = watch.of(policy.type)
        assert len([s for s in changes if s.data["record"]["intervention_id"] == episode]) <= 2

        # 6. Pushed on, the busy agent reaches its share: its calls fail, unsent.
        driver = asyncio.create_task(burst(client, busy, marker, outcomes))
        await until_refused(outcomes, timeout=150)
    finally:
        await stopped(driver)
        await stopped(sampler)
        await watch.stop()

    # A call the worker had sent before the burst stopped may still be answered and counted:
    # S3's count and the fake server's are read again until they agree (or 10 s pass).
    for _ in range(20):
        calls = served(fake, marker)
        state = (await gateway.get("/api/vsm/system/3", params={"vsm_id": vsm_id})).json()
        spent = {a["agent_id"]: a["llm_spent_today_usd"] for a in state["allocations"]}
        if spent[busy] == pytest.approx(calls * CALL_USD):
            break
        await asyncio.sleep(0.5)
    held = {a["agent_id"]: a["resources"]["llm_usd_per_day"] for a in state["allocations"]}
    print(f"{calls} calls served, {spent[busy]:.4f} of {held[busy]} USD; system {state['llm']}")
    assert spent[busy] == pytest.approx(calls * CALL_USD)
    assert calls * CALL_USD <= held[busy] + 1e-9
    assert calls * CALL_USD <= CAP_USD
    assert state["llm"]["spent_usd"] <= state["llm"]["cap_usd"] == CAP_USD
    assert state["llm"]["headroom_usd"] == pytest.approx(CAP_USD - state["llm"]["spent_usd"])

    # Operators heard of it at 80% and when the share was exhausted.
    severities: set[str] = set()
    with contextlib.suppress(TimeoutError):
        while len(severities) < 2:
            message = await system_probe.get(alerts, timeout=10)
            alert = AnyEnvelope.validate_json(message.body).data
            assert isinstance(alert, OperatorAlert)
            if alert.intervention_id == f"budget-{busy}":
                severities.add(alert.severity)
    assert severities == {"warning", "critical"}

    # The chain, from the pain: the shares moved, the intervention, the throttle, its allocation.
    trace = (await gateway.get(f"/api/vsm/trace/{pain.envelope['id']}")).json()
    order = [step["id"] for step in trace["chain"]]
    expected = [pain, opened, policy, allocation]
    positions = [order.index(seen.envelope["id"]) for seen in expected]
    assert positions == sorted(positions), trace["text"]
    assert moved[0].envelope["id"] in order, trace["text"]
    print(trace["text"])
