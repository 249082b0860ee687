"""`system.idle_10k`: 10,000 agents spawned in bulk, then what they cost sitting idle.

On a system of its own (`launched(ctx, "10k")`, no agents of the other cases): ten bulk
spawns (`POST /api/vsm/agents:bulk`, `REST_BULK_SPAWN_MAX` 1,000 each), one after the other,
each into a viable system of its own (`root/k<i>`, so no quota, `AGENTS_PER_SYSTEM`, is in
the way), after the same idle window with no agent at all (the fixed cost, `zero_*`); then,
after `IDLE_SETTLE_S`, the seven services' and the broker's CPU over `IDLE_10K_WINDOW_S` and
operations' VmRSS growth; then every agent terminated over REST in bulk requests of 1,000
(`POST /api/vsm/agents:bulk-terminate`), and what the broker still holds of them.
"""

from __future__ import annotations

import asyncio

from bench import DEADLINE_S, Context, Figures, benchmark
from bench.system import (
    IDLE_SETTLE_S,
    ProcessClock,
    idle_cpu,
    launched,
    rss_mib,
)

__all__ = ["idle_10k"]

BULKS = 10
"""Bulk requests (`--quick`: 100 agents each)."""
BULK_SIZE = 1000
IDLE_10K_WINDOW_S = 30.0
"""How long the idle system with its 10,000 agents is watched (the issue's 30 s)."""


@benchmark("system.idle_10k", rounds=1, deadline_s=1800.0)
async def idle_10k(ctx: Context) -> Figures:
    """10,000 worker agents (`--quick`: 1,000) spawned in ten bulk requests of 1,000, each into
    a viable system of its own (`root/k<i>`), on a system of its own, after watching it idle
    with no agent (`zero_idle_cpu_pct`, `zero_idle_msgs_per_s`, ...): `spawn_s`, agents/s,
    the services' and the broker's CPU per spawn; after `IDLE_SETTLE_S`, `idle_cpu_pct` (the
    seven services and the broker, % of one core, over 30 s) and operations' VmRSS before the
    spawns, after them and after the idle window (`rss_growth_mib`); then every agent
    terminated over REST in bulk requests of 1,000 (`terminated_per_s` beside
    `spawned_per_s`, `terminate_vs_spawn`), then until the broker holds nothing of them
    (`cleaned_s`, `cleaned_vs_spawn`), and `left_exchanges`/`left_bindings`."""
    size = 100 if ctx.quick else BULK_SIZE
    n = BULKS * size
    async with launched(ctx, "10k", workers=False) as system:
        pid = system.pid("operations")
        zero = await idle_cpu(system, IDLE_SETTLE_S, IDLE_10K_WINDOW_S)
        before = rss_mib(pid)
        spawned: list[str] = []
        clock = ProcessClock.of(system)
        for i in range(BULKS):
            body = {"agents": [{"type": "worker", "config": {}}] * size}
            async with asyncio.timeout(DEADLINE_S):
                response = await system.rest.post(f"/api/vsm/agents:bulk?vsm_id=root/k{i}", body)
            if response.status != 200:
                raise RuntimeError(f"bulk spawn {i}: {response.status} {response.text[:300]}")
            answer = response.json()
            ids = [r["agent"]["agent_id"] for r in answer["results"] if r["agent"] is not None]
            system.agents.update(ids)
            spawned += ids
            if len(ids) != size:
                raise RuntimeError(f"bulk spawn {i}: {answer['refused']} of {size} refused")
        spawn = clock.rate(n, "agents")
        after_spawn = rss_mib(pid)
        idle = await idle_cpu(system, IDLE_SETTLE_S, IDLE_10K_WINDOW_S)
        after_idle = rss_mib(pid)
        async with asyncio.timeout(DEADLINE_S * 5):
            terminated = await system.terminate_bulk(spawned)
        return {
            "agents": n,
            "spawn_s": n / spawn["agents_per_s"],
            **spawn,
            **idle,
            **{f"zero_{name}": value for name, value in zero.items()},
            "rss_before_mib": before,
            "rss_after_spawn_mib": after_spawn,
            "rss_after_idle_mib": after_idle,
            "rss_growth_mib": after_idle - before,
            "spawned_per_s": spawn["agents_per_s"],
            **terminated,
            "terminate_vs_spawn": terminated["terminated_per_s"] / spawn["agents_per_s"],
            "cleaned_vs_spawn": terminated["cleaned_per_s"] / spawn["agents_per_s"],
            "rss_after_terminate_mib": rss_mib(pid),
        }
