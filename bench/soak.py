"""`python -m bench --soak [--minutes M]`: the default organisation plus a hostile mix for a
long while (30 minutes by default), every service's memory and the broker's queues watched.

The seven services are launched as `make run` launches them (`ORGANISATION_ENV`, the flaky
endpoint on a free port and operations allowed to call it, the default organisation applied
with `vsm apply`, its workload of `process_data`, `analyze` and api calls every second), and
beside it a hostile mix at a steady rate (`HOSTILE_PER_S`): state queries about made-up
viable systems (S5, S4, S3, S2, the tree), commands with made-up names to a worker, trail
lookups of made-up message ids, and an operator's pain now and then, each in a made-up episode.
Every `SAMPLE_S` the bench reads each service's VmRSS (and the broker's, when it runs here)
and the depth of every queue the system declared (the contract's queues, their dead-letter
queues, every agent's command queue).

Reported: each process's RSS slope in MiB per hour, fitted (least squares) over the samples
after the warm-up (`WARMUP_FRACTION` of the run: imports, first requests, arenas), with its
first and last value; each queue's depth at the end, its maximum and its slope (messages per
hour). A service whose slope exceeds `RSS_GROWING_MIB_PER_H` and which gained more than
`NOISE_MIB` after the warm-up, or a queue holding more than `QUEUE_GROWING` messages at the
end and more than at the end of the warm-up, is growing: the run says so and exits with
status 1. The broker's RSS is reported, not judged (its node may serve others, and it holds
stream segments and quorum-queue logs by its own rules); nor are streams (the logs and
journals: their length is their retention's, not a backlog). The figures go to stdout and,
in full (every sample), to `bench/results/soak-<UTC timestamp>.json` and
`bench/results/latest-soak.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import pkgutil
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika

import vsm.contract
from bench import Context
from bench.system import System, contract_names, launched, rss_mib
from scripts.flaky_endpoint import FlakyEndpoint, Schedule
from scripts.localrun import (
    ORGANISATION_ENV,
    SERVICES,
    Workload,
    apply_organisation,
    egress_allowance,
)
from vsm.contract import topology
from vsm.contract.operations import partition_queue
from vsm.kit.addresses import BrokerAddresses

DEFAULT_MINUTES = 30.0
DEFAULT_ORGANISATION = Path(__file__).resolve().parents[1] / "deploy/organisation/default.yaml"
SAMPLE_S = 15.0
"""Between two readings of every process's RSS and every queue's depth."""
WARMUP_FRACTION = 0.2
"""The first part of the run, left out of the slopes: a service's memory rises while it
imports lazily, opens its first routes and grows its allocator's arenas."""
HOSTILE_PER_S = 10.0
"""Hostile requests a second, one at a time (on two shared cores, more starves the workload)."""
RSS_GROWING_MIB_PER_H = 20.0
"""A slope above this is growth, not noise: Python's allocator and the arenas of requests in
flight move RSS by a few MiB either way within minutes."""
NOISE_MIB = 8.0
"""And more than this gained after the warm-up: over a short soak a few MiB of allocator noise
is tens of MiB per hour."""
QUEUE_GROWING = 100
"""Messages a queue may hold at the end before its depth counts as growth."""
READY_WITHIN_S = 300.0
"""Seven services starting on a loaded machine (the cases' 120 s is not always enough)."""
STATE_ROUTES = ("system/5", "system/4", "system/3", "system/2", "meta-systems")


def slope_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour; 0 for fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


class Hostile:
    """The hostile mix, sent at `per_s` through the gateway's REST API; counts what it sent."""

    def __init__(self, system: System, worker: str, per_s: float) -> None:
        self.system, self.worker, self.per_s = system, worker, per_s
        self.sent = 0
        self.statuses: dict[str, int] = {}
        self.run = secrets.token_hex(3)

    async def one(self, index: int) -> None:
        rest = self.system.rest
        kind = index % 10
        if kind < 5:  # made-up viable systems asked about
            route = STATE_ROUTES[index % len(STATE_ROUTES)]
            answer = await rest.request("GET", f"/api/vsm/{route}?vsm_id=root/h{self.run}{index}")
        elif kind < 8:  # made-up command names
            body = {"type": f"made_up_{self.run}_{index}", "timeout_s": 10}
            answer = await rest.post(f"/api/vsm/agents/{self.worker}/command", body)
        elif kind < 9:  # made-up message ids
            answer = await rest.request("GET", f"/api/vsm/trace/{uuid.uuid4()}")
        else:  # an operator's pain now and then, each with an episode of its own
            body = {"intensity": 0.3, "reason": "soak", "episode": f"soak-{self.run}-{index}"}
            answer = await rest.post("/api/vsm/algedonic/pain", body)
        self.sent += 1
        key = str(answer.status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    async def loop(self, until: float) -> None:
        index = 0
        gap = 1 / self.per_s
        while time.monotonic() < until:
            began = time.monotonic()
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                await self.one(index)
            index += 1
            await asyncio.sleep(max(0.0, gap - (time.monotonic() - began)))


def streams() -> set[str]:
    """The contract's streams: logs and journals, whose length is their retention's business
    (reported apart, never judged as a backlog)."""
    found = set()
    for module in pkgutil.iter_modules(vsm.contract.__path__, "vsm.contract."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, topology.Queue) and value.kind == "stream":
                found.add(value.name)
    return found


async def queue_depths(system: System) -> dict[str, int]:
    """Messages in every queue the system declared (those that exist), streams included: the
    agents' commands are in S1's partition queues (`S1_PARTITIONS`, 16 by default)."""
    queues, _ = contract_names()
    for k in range(16):
        queue = partition_queue(k)
        queues += [queue.name, queue.dead_letter_queue]
    depths: dict[str, int] = {}
    channel = await system.connection.channel()
    try:
        for name in sorted(set(queues)):
            try:
                declared = await channel.declare_queue(system.name(name), passive=True)
            except aio_pika.exceptions.ChannelClosed:  # no such queue: the channel is closed
                channel = await system.connection.channel()
                continue
            count = declared.declaration_result.message_count
            depths[name] = int(count or 0)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
    return depths


def resident(system: System) -> dict[str, float]:
    found = {service: rss_mib(system.pid(service)) for service in SERVICES}
    if system.broker_pid is not None:
        with contextlib.suppress(OSError, RuntimeError):
            found["broker"] = rss_mib(system.broker_pid)
    return found


def verdict(samples: list[dict[str, Any]], warm: float) -> dict[str, Any]:
    """RSS slopes and queue depths after the warm-up, and what grew."""
    after = [s for s in samples if s["t"] >= warm] or samples[-2:]
    logs = streams()
    processes = {}
    for name in samples[-1]["rss_mib"]:
        points = [(s["t"], s["rss_mib"][name]) for s in after if name in s["rss_mib"]]
        slope = slope_per_h(points)
        grown = points[-1][1] - points[0][1]
        processes[name] = {
            "first_mib": samples[0]["rss_mib"].get(name),
            "warm_mib": points[0][1],
            "last_mib": samples[-1]["rss_mib"][name],
            "slope_mib_per_h": slope,
            "growing": name != "broker" and slope > RSS_GROWING_MIB_PER_H and grown > NOISE_MIB,
        }
    queues = {}
    for name in sorted({q for s in samples for q in s["queues"]}):
        points = [(s["t"], float(s["queues"][name])) for s in after if name in s["queues"]]
        if not points:
            continue
        last, at_warm = points[-1][1], points[0][1]
        queues[name] = {
            "last": int(last),
            "max": int(max(v for _, v in points)),
            "slope_per_h": slope_per_h(points),
            "stream": name in logs,
            "growing": name not in logs and last > QUEUE_GROWING and last > at_warm,
        }
    return {"processes": processes, "queues": queues}


def table(found: dict[str, Any], minutes: float, hostile: Hostile, workload: Workload) -> str:
    lines = [
        f"soak: {minutes:g} min, default organisation (workload sent {workload.sent} commands) "
        f"+ hostile mix ({hostile.sent} requests, statuses {hostile.statuses})",
        "",
        f"{'process':<18} {'first MiB':>10} {'warm MiB':>10} {'last MiB':>10} "
        f"{'slope MiB/h':>12}  growing",
    ]
    for name, p in found["processes"].items():
        judged = "not judged" if name == "broker" else ("GROWING" if p["growing"] else "no")
        lines.append(
            f"{name:<18} {p['first_mib']:>10.1f} {p['warm_mib']:>10.1f} {p['last_mib']:>10.1f} "
            f"{p['slope_mib_per_h']:>12.1f}  {judged}"
        )
    busy = {n: q for n, q in found["queues"].items() if q["max"] > 0}
    lines += [
        "",
        f"queues: {len(found['queues'])} watched, {len(busy)} ever non-empty after the warm-up",
        f"{'queue':<44} {'last':>6} {'max':>6} {'slope/h':>9}  growing",
    ]
    for name, q in busy.items():
        judged = "stream" if q["stream"] else ("GROWING" if q["growing"] else "no")
        lines.append(f"{name:<44} {q['last']:>6} {q['max']:>6} {q['slope_per_h']:>9.1f}  {judged}")
    return "\n".join(lines)


async def watch(system: System, until: float, began: float) -> list[dict[str, Any]]:
    """Every process's RSS and every queue's depth each `SAMPLE_S`, until `until`."""
    samples: list[dict[str, Any]] = []
    logs = streams()
    while True:
        t = time.monotonic() - began
        sample: dict[str, Any] = {"t": t, "rss_mib": resident(system)}
        sample["queues"] = await queue_depths(system)
        samples.append(sample)
        rss = " ".join(f"{k}={v:.0f}" for k, v in sample["rss_mib"].items())
        backlog = [n for name, n in sample["queues"].items() if name not in logs]
        print(
            f"soak t={t:6.0f}s rss_mib {rss} deepest_queue={max(backlog, default=0)}",
            file=sys.stderr,
        )
        if time.monotonic() >= until:
            return samples
        await asyncio.sleep(min(SAMPLE_S, max(0.0, until - time.monotonic())))


async def organised(system: System, endpoint: FlakyEndpoint) -> None:
    """The default organisation applied, its api agents calling `endpoint`."""
    with tempfile.TemporaryDirectory(prefix="vsm-soak-") as directory:
        organisation = Path(directory) / "default.yaml"
        text = DEFAULT_ORGANISATION.read_text()
        organisation.write_text(text.replace("http://127.0.0.1:8007/", endpoint.url))
        gateway = system.local.url("mcp-gateway")
        applied = await asyncio.to_thread(apply_organisation, organisation, gateway, system.token)
    if not applied:
        raise RuntimeError("the default organisation was not applied")
    endpoint.schedule.restart()


def save(report: dict[str, Any], results: Path, started: datetime) -> Path:
    results.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    path = results / f"soak-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(text)
    (results / "latest-soak.json").write_text(text)
    return path


async def soak(ctx: Context, minutes: float, results: Path) -> int:
    """Run the soak; 0 when nothing grew, else 1."""
    endpoint = FlakyEndpoint(Schedule(lead_s=10), port=0).start()
    env = {**ORGANISATION_ENV, **egress_allowance(endpoint.url)}
    started = datetime.now(UTC)
    try:
        soaking = launched(ctx, "soak", env, workers=False, ready_within_s=READY_WITHIN_S)
        async with soaking as system:
            await organised(system, endpoint)
            worker = await system.spawn()  # the hostile commands' target, apart from the org's
            gateway = system.local.url("mcp-gateway")
            workload = Workload(gateway, endpoint.url, system.token).start()
            hostile = Hostile(system, worker, HOSTILE_PER_S)
            began = time.monotonic()
            until = began + minutes * 60
            sending = asyncio.create_task(hostile.loop(until))
            try:
                samples = await watch(system, until, began)
            finally:
                workload.stop()
                await sending
    finally:
        endpoint.stop()
    found = verdict(samples, minutes * 60 * WARMUP_FRACTION)
    print(table(found, minutes, hostile, workload))
    growing = [n for n, p in found["processes"].items() if p["growing"]]
    growing += [n for n, q in found["queues"].items() if q["growing"]]
    print(f"\ngrowing: {', '.join(growing) if growing else 'nothing'}")
    report = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "broker": str(BrokerAddresses(ctx.url)),
        "minutes": minutes,
        "sample_s": SAMPLE_S,
        "warmup_fraction": WARMUP_FRACTION,
        "hostile_per_s": HOSTILE_PER_S,
        "hostile_sent": hostile.sent,
        "hostile_statuses": hostile.statuses,
        "workload_sent": workload.sent,
        "bounds": {"rss_mib_per_h": RSS_GROWING_MIB_PER_H, "queue_messages": QUEUE_GROWING},
        **found,
        "growing": growing,
        "samples": samples,
    }
    print(f"written {save(report, results, started)}")
    return 1 if growing else 0
