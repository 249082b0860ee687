"""Hostile variety leaves no trace: made-up names and ids, sent by the thousand, do not grow
any service's `/metrics` nor S5's state.

Labels come from closed sets (an agent's command is its type's declared command or `other`;
routing keys past a service's first few hundred become `<exchange>.other`), and a query
about a viable system that does not exist is a 404 that creates nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from scripts.localrun import SERVICES, LocalSystem
from tests.support.tokens import OPERATE_TOKEN, bearer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

COMMANDS = 1_000
"""Made-up command names: before the bounds, as many grew operations' `/metrics` by about
70,000 samples (issue 23). A shared CI machine takes about 8 a second through the gateway."""
SYSTEM_IDS = 5_000
"""Made-up viable-system ids asked about: before, each made queen keep state and export it."""
BOUND = 1_000
"""Samples a service's `/metrics` may gain over the flood: the system's own traffic still
opens a few routes during it (each a family of about 40 samples: counters and histogram
buckets), while the made-up names, unbounded, added tens of thousands."""
CONCURRENCY = 16


async def samples(system: LocalSystem) -> dict[str, set[str]]:
    """Each service's samples on `/metrics` (name and labels of every line not a comment)."""
    found = {}
    async with httpx.AsyncClient(headers=bearer(OPERATE_TOKEN), timeout=30) as http:
        for service in SERVICES:
            answer = await http.get(f"http://{system.scrape_address(service)}/metrics")
            assert answer.status_code == 200, (service, answer.status_code)
            found[service] = {
                line.rsplit(" ", 1)[0]
                for line in answer.text.splitlines()
                if line and not line.startswith("#")
            }
    return found


def grown_by_metric(before: set[str], after: set[str]) -> dict[str, int]:
    """The new samples, counted by metric name: what grew, for the failure message."""
    return dict(Counter(key.split("{", 1)[0] for key in after - before).most_common(8))


async def flood(count: int, one: Callable[[int], Awaitable[None]]) -> None:
    pending = iter(range(count))

    async def worker() -> None:
        for index in pending:
            await one(index)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def test_made_up_commands_and_system_ids_leave_metrics_and_state_bounded(
    hostile_system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker"})
    assert spawned.status_code == 201, spawned.text
    agent_id = spawned.json()["agent_id"]
    run = uuid.uuid4().hex[:6]

    async def command(index: int) -> None:
        name = f"made_up_{run}_{index}"
        sent = await gateway.post(
            f"/api/vsm/agents/{agent_id}/command", json={"type": name, "timeout_s": 30}
        )
        assert sent.status_code == 200, sent.text  # the agent answers: an error result
        assert sent.json()["status"] == "error", sent.text

    async def system_5(index: int) -> None:
        asked = await gateway.get("/api/vsm/system/5", params={"vsm_id": f"root/x{run}{index}"})
        assert asked.status_code == 404, asked.text

    # A few first, so the `other` series exist before the count starts.
    await flood(20, command)
    await flood(20, system_5)
    known = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root"})
    assert known.status_code == 200, known.text
    before = await samples(hostile_system)

    started = time.monotonic()
    await flood(COMMANDS, command)
    commanded = time.monotonic()
    await flood(SYSTEM_IDS, system_5)
    print(
        f"{COMMANDS} made-up commands in {commanded - started:.1f} s, "
        f"{SYSTEM_IDS} made-up system ids in {time.monotonic() - commanded:.1f} s"
    )

    after = await samples(hostile_system)
    grown = {service: len(after[service]) - len(before[service]) for service in SERVICES}
    what = {service: grown_by_metric(before[service], after[service]) for service in SERVICES}
    assert all(grown[service] <= BOUND for service in SERVICES), f"{grown}\n{what}"
    state = await gateway.get("/api/vsm/system/5", params={"vsm_id": "root"})
    assert state.status_code == 200, state.text
    assert f"x{run}" not in state.text  # no made-up system among S5's
