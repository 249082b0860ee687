"""`make bench`: the kit's messaging paths measured against raw aio-pika, same broker, same run.

A case is an async function that takes a `Context` and returns its figures for one round,
e.g. `{"msgs_per_s": 4100.0}` or `{"p50_ms": 1.9, "p99_ms": 4.2}`. Register it with
`@benchmark("kit.thing", baseline="raw.thing")`; the runner reports every figure of a case
that has a baseline as a ratio to the same figure of the baseline. A figure's name says which
way is better: `*_per_s` higher, anything else (`*_ms`) lower.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

Figures = dict[str, float]
T = TypeVar("T")

WINDOW = 64
"""Publishes in flight when publishing N messages (WINDOW workers, each awaiting its confirm)."""
PREFETCH = 64
"""Consumer prefetch, the kit's default `PREFETCH_COUNT`."""
IN_FLIGHT = 16
"""Requests in flight in the concurrent request/reply cases."""
WARMUP = 20
"""Untimed requests before a request/reply case starts its clock."""
DEADLINE_S = 180.0
"""A case that takes longer than this in one round has hung (lost messages, stuck broker)."""


@dataclass
class Context:
    """What every case gets: where the broker is, how much to do, where to record its names."""

    url: str
    namespace: str
    """Unique per run; every queue and exchange a case declares must start with `<namespace>.`"""
    messages: int
    """Messages per round in the publish and consume cases."""
    requests: int
    """Requests per round in the request/reply cases."""
    quick: bool = False
    """`--quick`: cases with their own sizes (e.g. `bench.system`) pick their small ones."""
    queues: set[str] = field(default_factory=set)
    exchanges: set[str] = field(default_factory=set)
    fixtures: dict[str, Any] = field(default_factory=dict)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    """Closed by the runner at the end of the run, before the namespace is cleaned up."""

    def name(self, canonical: str) -> str:
        return f"{self.namespace}.{canonical}"

    def track(self, *, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
        """Record full names to delete at the end of the run."""
        self.queues.update(queues)
        self.exchanges.update(exchanges)

    async def fixture(self, key: str, make: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """Something costly that several cases share for the whole run (e.g. a launched
        system): entered the first time a case asks for `key`, exited when the run ends."""
        if key not in self.fixtures:
            self.fixtures[key] = await self.stack.enter_async_context(make())
        value: T = self.fixtures[key]
        return value


CaseFn = Callable[[Context], Awaitable[Figures]]


@dataclass(frozen=True)
class Case:
    name: str
    run: CaseFn
    baseline: str | None = None
    doc: str = ""
    rounds: int | None = None
    """None: once per round. Else this many times (at most `--rounds`) after all the rounds:
    for a costly case without a baseline that leaves the system changed."""
    deadline_s: float = DEADLINE_S
    """A round that takes longer has hung."""


CASES: dict[str, Case] = {}


def benchmark(
    name: str,
    *,
    baseline: str | None = None,
    rounds: int | None = None,
    deadline_s: float = DEADLINE_S,
) -> Callable[[CaseFn], CaseFn]:
    """Register a case (its docstring, saying what it measures, goes into the JSON)."""
    if rounds is not None and baseline is not None:
        raise ValueError("a case compared with a baseline runs every round")

    def register(run: CaseFn) -> CaseFn:
        if name in CASES:
            raise ValueError(f"benchmark {name!r} is registered twice")
        doc = " ".join((run.__doc__ or "").split())
        CASES[name] = Case(name, run, baseline, doc, rounds, deadline_s)
        return run

    return register


def higher_is_better(figure: str) -> bool:
    return figure.endswith("_per_s")


async def pipelined(total: int, window: int, op: Callable[[], Awaitable[object]]) -> None:
    """Run `op` `total` times with at most `window` in flight (`window` sequential workers)."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await op()

    await asyncio.gather(*(worker() for _ in range(min(window, total))))


class Stopwatch:
    """Wall-clock and process CPU time since `start()` (or since it was made).

    CPU time covers the whole process (both ends of a request/reply case run here); it is
    less sensitive than wall time to a broker or disk that is the bottleneck.
    """

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, n: int, unit: str = "msgs") -> Figures:
        """`<unit>_per_s` and `cpu_us_per_op` of `n` operations done since `start()`."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return {f"{unit}_per_s": n / wall, "cpu_us_per_op": cpu / n * 1e6}


def latency(samples_s: list[float], clock: Stopwatch) -> Figures:
    """p50 and p99 in milliseconds of per-operation durations, and the CPU time per operation."""
    cuts = statistics.quantiles([s * 1000 for s in samples_s], n=100, method="inclusive")
    cpu = clock.rate(len(samples_s))["cpu_us_per_op"]
    return {"p50_ms": cuts[49], "p99_ms": cuts[98], "cpu_us_per_op": cpu}
