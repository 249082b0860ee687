"""The closed loop, end to end on the real broker with all seven services running.

An `api` agent's upstream starts failing; pain rises; S5 intervenes with a throttle; S3
turns it into an allocation with a rate; operations and S2 honour it, so the failing work
stops hurting; the upstream heals; the episode resolves, the throttle is lifted, viability
recovers; and the chain is rebuilt from causation ids by `GET /api/vsm/trace/{id}`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.closed_loop import (
    Seen,
    Upstream,
    Watch,
    loop_env,
    offer_work,
    spawn_api_agent,
    until_viable,
)
from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged
from vsm.contract.coordination import Rescheduled
from vsm.contract.operations import CommandResult
from vsm.contract.policy import PolicyChanged
from vsm.contract.system5 import InterventionOpened, InterventionResolved

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as running:
        yield running


@pytest.fixture(scope="module")
def system_env(upstream: Upstream) -> dict[str, str]:
    return loop_env(upstream)


def throttles(watch: Watch, agent_id: str, since: float) -> list[tuple[Seen, bool]]:
    """Throttle versions after `since`, each with whether it limits `agent_id`."""
    found = []
    for seen in watch.of(PolicyChanged.TYPE, since):
        record = seen.data["record"]
        if record["policy_type"] == "throttle":
            targets = {limit["target"] for limit in record["policy"]["limits"]}
            found.append((seen, agent_id in targets))
    return found


async def test_pain_becomes_policy_becomes_allocation_and_viability_recovers(
    gateway: httpx.AsyncClient, system_probe: Probe, upstream: Upstream
) -> None:
    agent_id = await spawn_api_agent(gateway, upstream)
    watch = Watch(system_probe)
    await watch.start(agent_id)
    driver = asyncio.create_task(offer_work(system_probe, agent_id))
    try:
        await watch.first(CommandResult.TYPE, timeout=30)  # work flows through S2
        await until_viable(gateway, viable=True, timeout=60)

        upstream.failing = True
        failed_at = time.monotonic()
        opened = await watch.first(InterventionOpened.TYPE, failed_at)
        signals = {s.envelope["id"]: s for s in watch.of(AlgedonicSignal.TYPE, failed_at)}
        pain = signals[opened.envelope["causationid"]]  # the one that crossed the threshold
        assert pain.data["kind"] == "pain"
        assert pain.data["context"]["agent_id"] == agent_id

        async def limiting() -> Seen | None:
            found = throttles(watch, agent_id, failed_at)
            return next((seen for seen, limits in found if limits), None)

        throttle = await eventually(limiting, timeout=30, what="a throttle on the agent")
        assert throttle.envelope["causationid"] == opened.envelope["id"]
        allocation = await watch.first(AllocationChanged.TYPE, throttle.at)
        rate = allocation.data["max_rate_per_s"]
        assert rate is not None
        assert allocation.envelope["causationid"] == throttle.envelope["id"]
        rescheduled = await watch.first(Rescheduled.TYPE, throttle.at)
        assert rescheduled.envelope["causationid"] == allocation.envelope["id"]
        await until_viable(gateway, viable=False, timeout=30)

        # The failing work stops hurting: errors now come at the throttled rate at most.
        await asyncio.sleep(5)
        failures_per_s = watch.failures_per_s(allocation.at + 2, allocation.at + 5)
        print(f"\nthrottled to {rate}/s: {failures_per_s:.1f} failures/s (offered 20/s)")
        assert failures_per_s <= rate * 1.3 + 1

        upstream.failing = False
        healed_at = time.monotonic()
        recovery_s = await until_viable(gateway, viable=True, timeout=90)
        resolved = await watch.first(InterventionResolved.TYPE, healed_at)
        assert resolved.data["intervention_id"] == opened.data["intervention_id"], watch.story(
            failed_at
        )

        async def lifting() -> Seen | None:
            found = throttles(watch, agent_id, resolved.at)
            return next((seen for seen, limits in found if not limits), None)

        lifted = await eventually(lifting, timeout=30, what="the throttle lifted")
        assert lifted.envelope["causationid"] == resolved.envelope["id"]
        restored = await watch.first(AllocationChanged.TYPE, lifted.at)
        assert restored.data["max_rate_per_s"] is None

        episode = opened.data["intervention_id"]
        changes = [
            s
            for s in watch.of(PolicyChanged.TYPE)
            if s.data["record"]["intervention_id"] == episode
        ]
        print(
            f"recovered {recovery_s:.1f} s after the upstream healed; "
            f"{len(changes)} policy change(s) in the episode"
        )
        assert len(changes) <= 2

        trace = (await gateway.get(f"/api/vsm/trace/{pain.envelope['id']}")).json()
        order = [step["id"] for step in trace["chain"]]
        expected = [pain, opened, throttle, allocation, rescheduled]
        positions = [order.index(seen.envelope["id"]) for seen in expected]
        assert positions == sorted(positions), trace["text"]
        print(trace["text"])
    finally:
        driver.cancel()
        await watch.stop()
