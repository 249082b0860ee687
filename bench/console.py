"""The operations room's cost (20 open consoles) and its first paint with 1,000 agents.

`system.console20` launches the seven services with a console token (a system of its own,
so the shared one keeps its default settings), then measures, in this order:
- `idle_cpu_pct:mcp-gateway`: the gateway's CPU (% of one core) over `IDLE_S` while the
  system sits idle and nobody watches, then `console20_idle_cpu_pct:mcp-gateway` with 20
  live map streams open (server-sent events, each reading every update as a browser would);
- `rest_p50_ms` / `console20_rest_p50_ms` / `rest_p50_after_ms`: `system.rest_command`'s p50
  before, with and after the 20 streams open, and `console20_rest_p50_ratio`, the p50 with
  them over the mean of before and after (1.0 = no effect; measuring both sides cancels
  the drift of a shared machine's load over the case);
- `map_ms`: one `GET /console` (the map, rendered whole) with the 20 streams open;
- `console20_chunks_per_s`: what the 20 streams received during the REST load (all of them).
Runs once, after the rounds.

`system.console_1000` tops the system of the other system cases up to 1,000 agents (after
`system.spawn_1000` some 90 more; `--quick`: 100), waits for their performance reports, and
loads the map (`/console`) and the agents page (`/console/agents`) in Debian's Chromium
(headless, driven by Playwright, as the browser tests do), each `LOADS` times in a new tab
after one untimed load, at least `FRESH_S` apart so no load reuses the answers of the one
before: medians of the time to first byte, to the first contentful paint and to the load
event, from the browser's own Navigation and Paint Timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import httpx
from playwright.async_api import BrowserContext, async_playwright

from bench import DEADLINE_S, WARMUP, Context, Figures, benchmark, pipelined
from bench.system import (
    IDLE_SETTLE_S,
    SPAWN_WINDOW,
    ProcessClock,
    System,
    launched,
    rest_command,
    sizes,
    the_system,
)
from tests.support.console import CHROMIUM, FLAGS
from vsm.mcp_gateway.console.pages import FRESH_S

TOKEN = "bench-console-token-0123456789abcdef"
CONSOLES = 20
IDLE_S = 20.0
LOADS = 7
"""Timed loads of each page in `system.console_1000` (the median is reported)."""
PAGES = {"map": "/console", "agents": "/console/agents"}
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {ttfb: nav.responseStart, fcp: paint ? paint.startTime : null, load: nav.loadEventEnd};
}"""
"""Milliseconds from the start of the navigation, as the browser measured them."""
CONSOLE_1000_DEADLINE_S = 600.0
"""Launching the system (when no case did before) and spawning up to 1,000 agents on two
shared cores takes longer than a case's usual deadline."""


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
    figures["rest_p50_after_ms"] = await p50_ms(system, sizes(ctx).rest)
    without = (figures["rest_p50_ms"] + figures["rest_p50_after_ms"]) / 2
    figures["console20_rest_p50_ratio"] = figures["console20_rest_p50_ms"] / without
    return figures


async def timed_load(context: BrowserContext, path: str) -> dict[str, float]:
    """One load of `path` in a new tab: time to first byte, first contentful paint, load."""
    tab = await context.new_page()
    try:
        await tab.goto(path, wait_until="load")
        await tab.wait_for_function(
            "performance.getEntriesByName('first-contentful-paint').length > 0", timeout=10_000
        )
        timing: dict[str, float] = await tab.evaluate(TIMING)
        if "/sign-in" in tab.url:
            raise RuntimeError(f"{path}: sent to sign in")
        return timing
    finally:
        await tab.close()


async def page_figures(context: BrowserContext, name: str, path: str) -> Figures:
    await timed_load(context, path)  # templates compiled, static files in the cache
    loads = []
    for _ in range(LOADS):
        await asyncio.sleep(FRESH_S + 0.1)  # the systems are asked again, as by a new viewer
        loads.append(await timed_load(context, path))
    return {
        f"{name}_{figure}_ms": statistics.median(load[figure] for load in loads)
        for figure in ("ttfb", "fcp", "load")
    }


@benchmark("system.console_1000", rounds=1, deadline_s=CONSOLE_1000_DEADLINE_S)
async def first_paint(ctx: Context) -> Figures:
    """The map's and the agents page's first paint in headless Chromium with 1,000 agents:
    medians of time to first byte, first contentful paint and load (ms)."""
    system = await the_system(ctx)
    n = sizes(ctx).spawn
    running = len((await system.http.get("/api/vsm/agents")).json())
    async with asyncio.timeout(DEADLINE_S):
        await pipelined(max(0, n - running), SPAWN_WINDOW, system.spawn)
    await asyncio.sleep(IDLE_SETTLE_S if not ctx.quick else 2.0)  # the spawns' events heard
    listed = len((await system.http.get("/api/vsm/agents")).json())
    if listed < n:
        raise RuntimeError(f"{listed} agents listed, {n} wanted")
    figures: Figures = {"agents": float(listed)}
    url = system.local.url("mcp-gateway")
    cookie = {"name": "vsm_console", "value": f"{int(time.time()) + 3600}.{system.token}"}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context(
                base_url=url, viewport={"width": 1280, "height": 900}
            )
            await context.add_cookies([cookie | {"url": url}])  # type: ignore[list-item]
            for name, path in PAGES.items():
                figures |= await page_figures(context, name, path)
        finally:
            await browser.close()
    return figures
