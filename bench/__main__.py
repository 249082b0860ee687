"""`python -m bench [--quick] [--only NAME] [--rounds K]`: run, print a table, save JSON.
`python -m bench --soak [--minutes M]`: the soak instead (`bench/soak.py`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import uvloop

from bench import (  # importing a module of cases registers them
    CASES,
    IN_FLIGHT,
    PREFETCH,
    WINDOW,
    Case,
    Context,
    Figures,
    console,  # noqa: F401
    floor,  # noqa: F401
    higher_is_better,
    hosts,  # noqa: F401
    journal,  # noqa: F401
    kit,  # noqa: F401
    loop,  # noqa: F401
    raw,  # noqa: F401
    replay,  # noqa: F401
    scale,  # noqa: F401
    soak,
    system,  # noqa: F401
)
from vsm.kit.addresses import BrokerAddresses

RESULTS = Path(__file__).parent / "results"
FALLBACK_URL = "amqp://guest:guest@127.0.0.1:5672/"
SIZES = {"full": (5000, 1000), "quick": (500, 200)}
"""(messages, requests) per round."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument("--only", metavar="NAME", help="cases whose name contains NAME")
    parser.add_argument("--rounds", type=int, default=5, metavar="K", help="default 5")
    parser.add_argument(
        "--soak",
        action="store_true",
        help="instead of the cases: the default organisation plus a hostile mix, watched",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=soak.DEFAULT_MINUTES,
        metavar="M",
        help=f"the soak's length (default {soak.DEFAULT_MINUTES:g})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return args


def select(only: str | None) -> list[Case]:
    """The chosen cases and their baselines (and theirs: a system case may be the baseline
    of another, e.g. `system.rest_command` of `system.host_command`), each case right after
    its baseline."""
    chosen = [case for case in CASES.values() if only is None or only in case.name]
    if not chosen:
        raise SystemExit(f"no benchmark matches {only!r}; known: {', '.join(CASES)}")
    names = {case.name for case in chosen}
    todo = [case.baseline for case in chosen if case.baseline]
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo += [base] if (base := CASES[name].baseline) else []
    order = list(CASES)

    def place(case: Case) -> tuple[int, int]:
        """Where the case's first baseline (one without its own) stands, then how deep."""
        depth = 0
        while case.baseline:
            case, depth = CASES[case.baseline], depth + 1
        return order.index(case.name), depth

    return sorted((CASES[name] for name in names), key=place)


@asynccontextmanager
async def broker_url() -> AsyncIterator[str]:
    """`AMQP_URL`, else the tests' broker (maybe a private node), else the local default."""
    url = os.environ.get("AMQP_URL")
    if url:
        yield url
        return
    try:
        from tests.support.rabbitmq import rabbitmq_url
    except Exception as error:
        print(f"note: AMQP_URL unset and tests.support.rabbitmq unusable ({error!r});")
        print(f"note: using {FALLBACK_URL}")
        yield FALLBACK_URL
        return
    manager = rabbitmq_url()
    if hasattr(manager, "__aenter__"):
        async with manager as url:
            yield url
    else:
        with manager as url:
            yield url


def redact(url: str) -> str:
    return str(BrokerAddresses(url))


async def run(cases: list[Case], ctx: Context, rounds: int) -> dict[str, list[Figures]]:
    """Every case once per round; odd rounds run in reverse so no case always goes first.

    A case with its own `rounds` (costly, no baseline, it changes what it measures, e.g.
    1,000 more agents) runs that many times after all the rounds, so it disturbs no other.
    """
    results: dict[str, list[Figures]] = {case.name: [] for case in cases}
    regular = [case for case in cases if case.rounds is None]
    for index in range(rounds):
        for case in regular if index % 2 == 0 else regular[::-1]:
            await run_one(case, ctx, results, f"{index + 1}/{rounds}")
    for case in cases:
        for index in range(min(case.rounds or 0, rounds)):
            await run_one(case, ctx, results, f"last {index + 1}/{case.rounds}")
    return results


async def run_one(case: Case, ctx: Context, results: dict[str, list[Figures]], label: str) -> None:
    async with asyncio.timeout(case.deadline_s):
        figures = await case.run(ctx)
    results[case.name].append(figures)
    shown = "  ".join(f"{key}={value:,.2f}" for key, value in figures.items())
    print(f"round {label}  {case.name:<21} {shown}", file=sys.stderr)


async def cleanup(ctx: Context) -> None:
    """Delete every queue and exchange the run declared (all under its namespace)."""
    prefix = f"{ctx.namespace}."
    assert all(name.startswith(prefix) for name in (*ctx.queues, *ctx.exchanges))
    left = {"queues": sorted(ctx.queues), "exchanges": sorted(ctx.exchanges)}
    try:
        async with asyncio.timeout(60):
            connection = await BrokerAddresses(ctx.url).connect()
            async with connection:
                channel = await connection.channel()
                for kind, names in left.items():
                    for name in list(names):
                        try:
                            if kind == "queues":
                                await channel.queue_delete(name)
                            else:
                                await channel.exchange_delete(name)
                            names.remove(name)
                        except aio_pika.exceptions.AMQPError:
                            channel = await connection.channel()
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as error:
        print(f"warning: cleanup of {ctx.namespace} failed: {error!r}", file=sys.stderr)
    if left["queues"] or left["exchanges"]:
        print(f"warning: left on the broker: {json.dumps(left)}", file=sys.stderr)


def median(rounds: list[Figures]) -> Figures:
    return {key: statistics.median(figures[key] for figures in rounds) for key in rounds[0]}


def breakdown(figure: str, baseline: Figures) -> bool:
    """A figure shown as it is, not as a ratio: one the baseline lacks, or a part of a
    figure (`cpu_us_per_op:<process>`), which may be 0 in the baseline (a system case
    compared with another, e.g. `system.host_command` with `system.rest_command`)."""
    return figure not in baseline or ":" in figure


def compare(cases: list[Case], results: dict[str, list[Figures]]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        if case.baseline is None:
            continue
        mine, theirs = results[case.name], results[case.baseline]
        for figure, value in median(mine).items():
            if breakdown(figure, theirs[0]):
                continue  # in the JSON and `extras`
            base = median(theirs)[figure]
            paired = [a[figure] / b[figure] for a, b in zip(mine, theirs, strict=True)]
            rows.append(
                {
                    "case": case.name,
                    "baseline": case.baseline,
                    "figure": figure,
                    "kit": value,
                    "raw": base,
                    "ratio": value / base,
                    "ratio_min": min(paired),
                    "ratio_max": max(paired),
                    "better": "higher" if higher_is_better(figure) else "lower",
                }
            )
    return rows


def extras(
    cases: list[Case], results: dict[str, list[Figures]]
) -> dict[str, tuple[list[Figures], str]]:
    """Cases without a baseline, and the figures of compared cases that their baseline lacks
    (e.g. CPU per service), shown as they are."""
    baselines = {case.baseline for case in cases}
    shown: dict[str, tuple[list[Figures], str]] = {}
    for case in cases:
        mine = results[case.name]
        if not mine:
            continue
        if case.baseline is None and case.name not in baselines:
            shown[case.name] = (mine, "no baseline")
        elif case.baseline is not None:
            theirs = results[case.baseline][0]
            more = [{k: v for k, v in r.items() if breakdown(k, theirs)} for r in mine]
            if more[0]:
                shown[case.name] = (more, "breakdown")
    return shown


def table(
    rows: list[dict[str, Any]],
    rounds: int,
    alone: dict[str, tuple[list[Figures], str]] | None = None,
) -> str:
    head = f"{'case':<21} {'figure':<15} {'kit':>11} {'raw':>11} {'kit/raw':>8}  "
    head += f"{'per round':>11}  better"
    lines = [head, "-" * len(head)]
    for row in rows:
        spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        lines.append(
            f"{row['case']:<21} {row['figure']:<15} {row['kit']:>11,.2f} {row['raw']:>11,.2f} "
            f"{row['ratio']:>8.2f}  {spread:>11}  {row['better']}"
        )
    for name, (figures, note) in (alone or {}).items():
        lines += ["", f"{name} ({note}; median over {len(figures)} round(s), range):"]
        for figure, value in median(figures).items():
            low, high = (f(k[figure] for k in figures) for f in (min, max))
            lines.append(f"  {figure:<32} {value:>11,.2f}  {low:,.2f}-{high:,.2f}")
    lines += [
        "",
        f"Medians over {rounds} rounds; kit/raw is the ratio of the medians, 'per round' the",
        "range of the paired per-round ratios. *_per_s: higher is better (kit/raw < 1: the kit",
        "is slower); *_ms and cpu_us_per_op (process CPU time per message or request, both",
        "ends included): lower is better (kit/raw > 1: the kit is slower or costlier).",
        "system.* rows: 'kit' is the whole system (seven service processes driven from here);",
        "their cpu_us_per_op counts this process and the seven services (per process below).",
        "system.host_command's 'raw' is system.rest_command (same system, same run); its",
        "cpu_us_per_op counts the agent host too.",
    ]
    return "\n".join(lines)


async def soaked(minutes: float) -> int:
    """`--soak`: the soak alone (`bench/soak.py`), on the same broker as the cases would use."""
    async with broker_url() as url:
        ctx = Context(url, f"bench-{secrets.token_hex(4)}", 0, 0)
        print(f"broker {redact(url)}, {ctx.namespace}, soak {minutes:g} min", file=sys.stderr)
        try:
            async with ctx.stack:
                return await soak.soak(ctx, minutes, RESULTS)
        finally:
            await cleanup(ctx)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.soak:
        code = await soaked(args.minutes)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    cases = select(args.only)
    messages, requests = SIZES["quick" if args.quick else "full"]
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    async with broker_url() as url:
        ctx = Context(url, f"bench-{secrets.token_hex(4)}", messages, requests, args.quick)
        print(
            f"broker {redact(url)}, namespace {ctx.namespace}, {args.rounds} rounds, "
            f"{messages} messages, {requests} requests per round",
            file=sys.stderr,
        )
        try:
            async with ctx.stack:  # shared fixtures (a launched system) end with the run
                results = await run(cases, ctx, args.rounds)
        finally:
            await cleanup(ctx)
    rows = compare(cases, results)
    print(table(rows, args.rounds, extras(cases, results)))
    loads = " -> ".join(f"{a:.1f}/{b:.1f}/{c:.1f}" for a, b, c in (load_before, os.getloadavg()))
    print(f"\nload average (1/5/15 min) at start -> end: {loads} on {os.cpu_count()} CPUs")
    report = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "broker": redact(url),
        "quick": args.quick,
        "rounds": args.rounds,
        "messages": messages,
        "requests": requests,
        "window": WINDOW,
        "prefetch": PREFETCH,
        "in_flight": IN_FLIGHT,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": {"start": load_before, "end": os.getloadavg()},
        "cases": {
            case.name: {
                "doc": case.doc,
                "baseline": case.baseline,
                "median": median(results[case.name]),
                "rounds": results[case.name],
            }
            for case in cases
        },
        "comparisons": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"\nwritten {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


async def guarded() -> None:
    try:
        await main()
    except Exception:
        # A robust aio-pika connection whose first attempt hangs (a stuck broker) ignores
        # cancellation, so asyncio.run() would wait for it forever: report and leave now.
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    # The services run on uvloop (uvicorn picks it), so the raw baselines and the load run
    # on it too: the ratios compare the same event loop.
    uvloop.run(guarded())
