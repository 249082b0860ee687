"""The operations room's cost: 20 open consoles against a gateway of their own.

`system.console20` launches the seven services with a console token (a system of its own,
so the shared one keeps its default settings), then measures, in this order:
- `idle_cpu_pct:mcp-gateway`: the gateway's CPU (% of one core) over `IDLE_S` while the
  system sits idle and nobody watches, then `console20_idle_cpu_pct:mcp-gateway` with 20
  live map streams open (server-sent events, each reading every update as a browser would);
- `rest_p50_ms` / `console20_rest_p50_ms`: `system.rest_command`'s p50 without and with the
  20 streams open, and their ratio `console20_rest_p50_ratio` (1.0 = no effect);
- `map_ms`: one `GET /console` (the map, rendered whole) with the 20 streams open;
- `console20_chunks_per_s`: what the 20 streams received during the REST load (all of them).
Runs once, after the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import httpx

from bench import DEADLINE_S, WARMUP, Context, Figures, benchmark
from bench.system import ProcessClock, System, launched, rest_command, sizes

TOKEN = "bench-console-token-0123456789abcdef"
CONSOLES = 20
IDLE_S = 20.0


async def watch(http: httpx.AsyncClient, received: list[int]) -> None:
    """One open console: the map's live stream, read to the end."""
    async with http.stream("GET", "/console/events/map") as stream:
        async for chunk in stream.aiter_bytes():
            received.append(len(chunk))


async def p50_ms(system: System, n: int) -> float:
    post = rest_command(system)
    for _ in range(WARMUP):
        await post()
    samples = []
    async with asyncio.timeout(DEADLINE_S):
        for _ in range(n):
            started = time.perf_counter()
            await post()
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def idle_gateway_pct(system: System) -> float:
    clock = ProcessClock({"mcp-gateway": system.pid("mcp-gateway")}, None)
    await asyncio.sleep(IDLE_S)
    return clock.busy_pct("cpu")["cpu:mcp-gateway"]


@benchmark("system.console20", rounds=1)
async def consoles(ctx: Context) -> Figures:
    """The gateway's idle CPU and `system.rest_command` p50, without and with 20 open
    consoles (live map streams over server-sent events)."""
    env = {"MCP_AUTH_TOKEN": TOKEN}
    system = await ctx.fixture("console-system", lambda: launched(ctx, "con", env))
    cookie = {"vsm_console": f"{int(time.time()) + 3600}.{TOKEN}"}
    figures: Figures = {"idle_cpu_pct:mcp-gateway": await idle_gateway_pct(system)}
    figures["rest_p50_ms"] = await p50_ms(system, sizes(ctx).rest)
    received: list[int] = []
    limits = httpx.Limits(max_connections=CONSOLES + 2)
    async with httpx.AsyncClient(
        base_url=system.local.url("mcp-gateway"), cookies=cookie, timeout=None, limits=limits
    ) as http:
        streams = [asyncio.create_task(watch(http, received)) for _ in range(CONSOLES)]
        try:
            await asyncio.sleep(5)  # every stream connected and sent its first view
            if not received:
                raise RuntimeError("no console stream received anything")
            figures["console20_idle_cpu_pct:mcp-gateway"] = await idle_gateway_pct(system)
            before, began = len(received), time.perf_counter()
            figures["console20_rest_p50_ms"] = await p50_ms(system, sizes(ctx).rest)
            chunks = len(received) - before
            figures["console20_chunks_per_s"] = chunks / (time.perf_counter() - began)
            started = time.perf_counter()
            page = await http.get("/console")
            figures["map_ms"] = (time.perf_counter() - started) * 1000
            if page.status_code != 200 or "Policy and identity" not in page.text:
                raise RuntimeError(f"map: {page.status_code}")
        finally:
            for stream in streams:
                stream.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await asyncio.gather(*streams, return_exceptions=True)
    figures["console20_rest_p50_ratio"] = figures["console20_rest_p50_ms"] / figures["rest_p50_ms"]
    return figures
