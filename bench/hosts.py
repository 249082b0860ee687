"""Agent hosts (issue 19): a command through an external host, and what an idle host costs.

An agent host (`python -m vsm.agent run tests.support.host_agents`, launched by the tests'
`start_host`) runs beside a launched system, offering the tests' SDK type `tally`, whose
`add` is as cheap a command as a worker's `process_data` of `system.rest_command`:

- `system.host_command`: `system.rest_command`'s REST command, but to a `tally` agent on the
  host (REST -> mcp-gateway -> operations -> the host's pool partition -> the result), on the
  same system in the same run, compared with `system.rest_command` itself (bar: 1.1x).
- `system.host_idle`: on a system of its own, the host's CPU (% of one core) and VmRSS with a
  few agents of its type idle, beside operations with as many worker agents idle, measured
  in the same window, and both processes' VmRSS once ready before any agent (as
  `system.idle_rss`). The bars: under 1% of one core, under 60 MiB.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench import Context, Figures, benchmark
from bench.system import (
    IDLE_RSS_SETTLE_S,
    IDLE_SETTLE_S,
    IDLE_WINDOW_S,
    ProcessClock,
    System,
    idle_cpu,
    launched,
    one_at_a_time,
    rest_command,
    rss_mib,
    sizes,
    the_system,
)
from tests.support.hosts import Host, start_host

__all__ = ["host_command", "host_idle"]

HOSTED = ["tests.support.host_agents"]
"""What the bench's host offers (`vsm-agent run` targets)."""
HOSTED_TYPE = "tally"
HOST = "agent-host"
"""The host's name among the processes a `ProcessClock` watches."""
IDLE_AGENTS = 5
"""Agents idle on the host in `system.host_idle` (and worker agents on operations beside)."""


@dataclass(frozen=True)
class Hosted:
    """An agent host beside a launched system, and an agent of its type to command."""

    system: System
    host: Host
    agent_id: str

    @property
    def processes(self) -> dict[str, int]:
        return {HOST: self.host.process.pid}


@asynccontextmanager
async def host_beside(system: System, instance: str) -> AsyncIterator[Host]:
    """An agent host offering `HOSTED` to `system`, ready; stopped (SIGTERM) at the end. Its
    log goes with the system's (kept when something failed); its pool queues are deleted
    with the system's names."""
    system.pools.add(HOSTED_TYPE)
    host = start_host(system.local, instance, HOSTED, system.local.log_dir)
    try:
        await asyncio.to_thread(host.wait_ready)
        yield host
    finally:
        code = await asyncio.to_thread(host.stop)
        if code not in (0, -15):
            print(f"host {instance}: exit code {code}; log {host.log}", file=sys.stderr)


@asynccontextmanager
async def hosted(ctx: Context) -> AsyncIterator[Hosted]:
    """The host beside the system of the system cases, with one `tally` agent on it."""
    system = await the_system(ctx)
    async with host_beside(system, "bench-host") as host:
        yield Hosted(system, host, await system.spawn(HOSTED_TYPE))


def add(seq: int) -> dict[str, object]:
    """`tally.add`: the hosted type's cheapest command."""
    return {"type": "add", "data": {"value": seq % 1000}}


@benchmark("system.host_command", baseline="system.rest_command")
async def host_command(ctx: Context) -> Figures:
    """`system.rest_command` to a `tally` agent on an agent host beside the system
    (`POST /api/vsm/agents/{id}/command`, `add`, one at a time on one keep-alive
    connection): p50/p99; `cpu_us_per_op` counts the host's CPU too
    (`cpu_us_per_op:agent-host`)."""
    on = await ctx.fixture("host", lambda: hosted(ctx))
    post = rest_command(on.system, on.agent_id, add)
    return await one_at_a_time(
        post, sizes(ctx).rest, lambda: ProcessClock.of(on.system, on.processes)
    )


@benchmark("system.host_idle", rounds=1, deadline_s=600.0)
async def host_idle(ctx: Context) -> Figures:
    """On a system of its own, an agent host offering `tally`: its VmRSS once ready
    (`host_ready_rss_mib`, read as `system.idle_rss` reads the services', beside
    operations' `operations_ready_rss_mib`); then with 5 `tally` agents on it and 5 worker
    agents on operations, after `IDLE_SETTLE_S`, each process's CPU over `IDLE_WINDOW_S`
    (`host_idle_cpu_pct`, `operations_idle_cpu_pct`, % of one core) and VmRSS
    (`host_rss_mib`, `operations_rss_mib`). The bars: the host under 1% of one core and
    60 MiB. Runs once; its deadline is 600 s (launching the system and the host)."""
    async with (
        launched(ctx, "hosts", workers=False) as system,
        host_beside(system, "bench-idle-host") as host,
    ):
        pid = host.process.pid
        await asyncio.sleep(IDLE_RSS_SETTLE_S)
        ready_rss = rss_mib(pid)
        for _ in range(IDLE_AGENTS):
            await system.spawn(HOSTED_TYPE)
            await system.spawn()
        idle = await idle_cpu(
            system, IDLE_SETTLE_S if not ctx.quick else 2.0, IDLE_WINDOW_S, {HOST: pid}
        )
        host_rss, operations_rss = rss_mib(pid), rss_mib(system.pid("operations"))
        host_cpu, operations_cpu = idle[f"idle_cpu_pct:{HOST}"], idle["idle_cpu_pct:operations"]
        return {
            "host_idle_cpu_pct": host_cpu,
            "operations_idle_cpu_pct": operations_cpu,
            "host_rss_mib": host_rss,
            "operations_rss_mib": operations_rss,
            "host_ready_rss_mib": ready_rss,
            "operations_ready_rss_mib": system.idle_rss["operations"],
            "host_vs_operations_rss": host_rss / operations_rss,
        }
