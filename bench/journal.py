"""A service's journal (`vsm.kit.journal`): the cost of keeping a change, and of reading the
state back at start-up after a long history (which must not grow with the history)."""

from __future__ import annotations

import secrets
import statistics
import time

from bench import Context, Figures, benchmark
from bench.kit import runtime, started
from vsm.contract import topology
from vsm.contract.control import AccountRecord, BudgetRecord, Resources, System3Snapshot
from vsm.kit.journal import StateJournal
from vsm.kit.names import Namespace

AGENTS = {"full": 1000, "quick": 100}
"""Accounts in the state kept (S3 with this many agents)."""
HISTORY = {"full": 300, "quick": 50}
"""Changes kept before the read-back (each one a whole snapshot)."""


def state(agents: int, change: int) -> System3Snapshot:
    """S3's state with `agents` agents, the first one's priority moved by `change`."""
    return System3Snapshot(
        budgets=[BudgetRecord(vsm_id="root", budget=Resources(concurrency_slots=100_000))],
        accounts=[
            AccountRecord(
                agent_id=f"worker-{n:05d}",
                agent_type="worker",
                vsm_id="root",
                resources=Resources(concurrency_slots=2, memory_mb=128),
                base_slots=2,
                priority=(change if n == 0 else 4) % 10,
                reason="granted: worker holds 2 slots, 128 MiB",
            )
            for n in range(agents)
        ],
    )


@benchmark("kit.journal", rounds=3)
async def journal(ctx: Context) -> Figures:
    """`keep_ms`: one change of an S3 state of AGENTS agents written and confirmed (median of
    HISTORY); `open_ms`: a restart's read-back of that journal (mark, tail, last snapshot,
    restore); `snapshot_kb`: one entry's size."""
    size = "quick" if ctx.quick else "full"
    agents, history = AGENTS[size], HISTORY[size]
    stream = topology.Queue(
        f"vsm.bench.journal.{secrets.token_hex(4)}",
        kind="stream",
        arguments=topology.JOURNAL_RETENTION,
    )
    ctx.track(queues=[Namespace(ctx.namespace).name(stream.name)])
    service = runtime(ctx, "bench-journal")
    current = [state(agents, 0)]
    writer = StateJournal(
        service.bus, stream, System3Snapshot, lambda: current[0], instance="w", timeout_s=60
    )
    reader = StateJournal(
        service.bus, stream, System3Snapshot, lambda: current[0], instance="r", timeout_s=60
    )
    async with started(service):
        await writer.open(lambda _: None)
        kept = []
        for change in range(1, history + 1):
            current[0] = state(agents, change)
            started_at = time.perf_counter()
            await writer.keep()
            kept.append(time.perf_counter() - started_at)
        restored: list[System3Snapshot] = []
        started_at = time.perf_counter()
        await reader.open(restored.append)
        opened = time.perf_counter() - started_at
    assert restored == [current[0]], "the read-back is not the last state kept"
    return {
        "keep_ms": statistics.median(kept) * 1000,
        "open_ms": opened * 1000,
        "snapshot_kb": len(current[0].model_dump_json()) / 1024,
    }
