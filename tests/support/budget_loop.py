"""The closed loop for LLM cost as a scenario, shared by its test and its benchmark.

A viable system gets a daily LLM budget in USD; two llm_workers of it get their shares from
S3. Chats to the busy one (`burst`), answered by the fake Messages API at a fixed price, push
it past 80% of its share: S3 feels pain `budget`, S5 throttles it, the pain decays. The fake
counts the calls it served (`served`), so what was spent is known outside the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.closed_loop import LOOP_ENV, Seen, Watch
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.polling import eventually
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.policy import PolicyChanged

HAIKU = "claude-haiku-4-5"
USAGE = {"input_tokens": 1000, "output_tokens": 100}
CALL_USD = (1000 * 1 + 100 * 5) / 1e6
"""What each chat costs at Haiku's prices: 0.0015 USD."""
CAP_USD = 0.15
"""The system's daily cap: 100 chats. The busy agent's first share is half of it (50 chats),
the idle one's a quarter; 80% of the busy one's share is 40 chats."""
BUDGET = {"concurrency_slots": 64, "memory_mb": 8192, "llm_usd_per_day": CAP_USD}
COST_ENV = {**LOOP_ENV, "HEADROOM_INTERVAL": "1", "LLM_MAX_RETRIES": "0"}
"""The loop's fast clocks; S3's headroom as often as S5 forgets it; no retries of the API."""


def priced(fake: FakeAnthropic) -> FakeAnthropic:
    """The fake answering every chat at the same price."""
    fake.default_usage = USAGE
    return fake


def served(fake: FakeAnthropic, marker: str, since: float = 0.0, until: float = 1e12) -> int:
    """Messages API calls the fake served for chats carrying `marker`, between two times."""
    return len(
        [
            r
            for r in fake.requests
            if r.path == "/v1/messages" and marker in str(r.body) and since <= r.at < until
        ]
    )


async def budgeted_pair(http: httpx.AsyncClient) -> tuple[str, str, str]:
    """A new viable system with the budget, and its two llm_workers (busy, idle) once each
    holds its first share."""
    vsm_id = f"root/spend-{secrets.token_hex(3)}"
    put = await http.put("/api/vsm/system/3/budget", json=BUDGET, params={"vsm_id": vsm_id})
    assert put.status_code == 200, put.text
    busy, idle = await spawn(http, vsm_id), await spawn(http, vsm_id)

    async def shares() -> bool:
        held = (await share_of(http, busy), await share_of(http, idle))
        return held == (CAP_USD / 2, CAP_USD / 4)

    await eventually(shares, timeout=30, what="each agent's first share of the budget")
    return vsm_id, busy, idle


async def spawn(http: httpx.AsyncClient, vsm_id: str) -> str:
    config = {"model": HAIKU, "max_tokens": 100, "allocation": 4, "max_allocation": 4}
    body = {"type": "llm_worker", "config": config}
    spawned = await http.post("/api/vsm/agents", json=body, params={"vsm_id": vsm_id})
    assert spawned.status_code == 201, spawned.text
    return str(spawned.json()["agent_id"])


async def share_of(http: httpx.AsyncClient, agent_id: str) -> float | None:
    """The share of the daily budget the agent itself holds (its S3* audit says)."""
    audit = {"agent_id": agent_id, "audit_type": "resource_audit"}
    report = (await http.post("/api/vsm/audit/bypass", json=audit)).json()["report"]
    return report.get("llm_usd_per_day")


Client = Callable[[], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
"""A new client of the gateway, with a token that may operate."""


async def burst(
    client: Client,
    agent_id: str,
    marker: str,
    outcomes: list[str],
) -> None:
    """Chats to the agent, two at a time, each in a new conversation, until cancelled; the
    outcome of each (`ok` or its error code) in `outcomes`."""

    async def one_after_another() -> None:
        async with client() as http:
            while True:
                body: dict[str, Any] = {"type": "chat", "timeout_s": 50}
                body["data"] = {"message": f"{marker} {secrets.token_hex(4)}"}
                try:
                    reply = await http.post(f"/api/vsm/agents/{agent_id}/command", json=body)
                    answer = reply.json()
                except (httpx.HTTPError, ValueError):
                    outcomes.append("no_answer")
                    continue
                error = answer.get("error") or {}
                outcomes.append(error.get("code") or answer.get("status", "?"))

    await asyncio.gather(one_after_another(), one_after_another())


async def stopped(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def allocations_of(watch: Watch, agent_id: str, since: float = 0.0) -> list[Seen]:
    return [s for s in watch.of(AllocationChanged.TYPE, since) if s.data["agent_id"] == agent_id]


async def budget_pain(watch: Watch, since: float, timeout: float = 60) -> Seen:
    """The first pain with reason `budget` seen since `since`."""

    async def found() -> Seen | None:
        pains = watch.of(AlgedonicSignal.TYPE, since)
        return next((s for s in pains if s.data["reason"] == "budget"), None)

    return await eventually(found, timeout=timeout, interval=0.1, what="budget pain")


async def throttle_of(watch: Watch, agent_id: str, since: float) -> tuple[Seen, Seen]:
    """The throttle policy limiting the agent, and the allocation with a rate S3 made of it."""

    async def policy() -> Seen | None:
        for seen in watch.of(PolicyChanged.TYPE, since):
            record = seen.data["record"]
            limits = record["policy"].get("limits", [])
            if record["policy_type"] == "throttle" and agent_id in {x["target"] for x in limits}:
                return seen
        return None

    throttle = await eventually(policy, timeout=30, what="a throttle on the busy agent")

    async def limited() -> Seen | None:
        changes = allocations_of(watch, agent_id, throttle.at)
        return next((s for s in changes if s.data["max_rate_per_s"]), None)

    allocation = await eventually(limited, timeout=30, what="the throttle as an allocation")
    return throttle, allocation


async def until_refused(outcomes: list[str], timeout: float) -> None:
    async def refused() -> bool:
        return outcomes.count("llm_budget_exhausted") >= 3

    await eventually(refused, timeout=timeout, what="calls refused at the cap")
