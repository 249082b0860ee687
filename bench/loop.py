"""The closed loop's own figures: how fast viability recovers once the trouble is gone, and
how calm S5 stays while it lasts (policy changes per episode; damping promises at most 2).
The cost episode (`tests.support.budget_loop`) adds the same for LLM spend: an llm_worker's
burst past 80% of its share of a daily budget, and what was spent beyond the cap (never any).
The scale episode (`tests.support.scale_loop`) adds it for capacity: work queued for a type
until S3 spawns more of it, the queue drains and S3 retires them again. The structure episode
(`tests.support.structure_loop`) adds it for structure: distinct work for a type overloads
root's variety until S5 grows a child for it and root's variety falls below capacity again,
then the idle child is folded back.

These are times of a control loop whose clocks are configuration (`LOOP_ENV`: pain halves
every 4 s, measures are judged over 1 s windows), not of message passing, so they are
reported as seconds and as multiples of the pain half-life rather than as a ratio to raw
aio-pika: the raw baseline of a decision loop does not exist. The scale episode runs on a
system of its own, launched with `SCALE_ENV` (S4 scales after 1 s of queueing, back after
3 s of calm): on the loop's system those clocks would have S4 scale the `api` agent's type
too, and change the loop's own figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import time
from typing import Any

from bench import Context, Figures, benchmark
from bench.system import System, launched
from tests.support.budget_loop import (
    CALL_USD,
    CAP_USD,
    COST_ENV,
    budget_pain,
    budgeted_pair,
    burst,
    priced,
    served,
    stopped,
    throttle_of,
    until_refused,
)
from tests.support.closed_loop import (
    LOOP_ENV,
    Upstream,
    Watch,
    loop_env,
    offer_work,
    spawn_api_agent,
    until_viable,
)
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.probe import Probe, open_probe
from tests.support.scale_loop import (
    SCALE_ENV,
    policy_changes,
    scale_episode,
    scale_watch,
    spawn_worker,
)
from tests.support.structure_loop import (
    STRUCTURE_ENV,
    structural_changes,
    structure_episode,
    structure_watch,
)
from vsm.contract.policy import PolicyChanged
from vsm.contract.system5 import InterventionOpened, InterventionResolved

EPISODES = {"quick": 1, "full": 3}
TROUBLE_S = 6.0
"""How long the upstream keeps failing once S5 has intervened."""


async def episode(system: System, watch: Watch, upstream: Upstream) -> dict[str, float]:
    """One failure and recovery: seconds from failure to intervention, from healing to
    viability, and the policy versions that carried the intervention's id."""
    await until_viable(system.http, viable=True, timeout=90)
    upstream.failing = True
    failed_at = time.monotonic()
    opened = await watch.first(InterventionOpened.TYPE, failed_at, timeout=60)
    await asyncio.sleep(TROUBLE_S)
    upstream.failing = False
    recovery_s = await until_viable(system.http, viable=True, timeout=120)
    episode_id = opened.data["intervention_id"]
    await watch.first(InterventionResolved.TYPE, opened.at, timeout=60)
    await asyncio.sleep(3.0)  # the lift follows the resolution once the unit is healthy
    changes = [
        s for s in watch.of(PolicyChanged.TYPE) if s.data["record"]["intervention_id"] == episode_id
    ]
    return {
        "pain_to_intervention_s": opened.at - failed_at,
        "recovery_s": recovery_s,
        "policy_changes": float(len(changes)),
    }


async def cost_episode(system: System, probe: Probe, fake: FakeAnthropic) -> dict[str, float]:
    """One LLM budget episode: seconds from the pain to the throttle's allocation and to the
    episode's resolution, its policy changes, and USD served beyond the cap."""
    _, busy, idle = await budgeted_pair(system.http)
    system.agents.update({busy, idle})
    watch = Watch(probe)
    await watch.start(busy)
    marker = f"spend-{secrets.token_hex(4)}"
    outcomes: list[str] = []
    client = lambda: contextlib.nullcontext(system.http)  # noqa: E731
    started = time.monotonic()
    driver = asyncio.create_task(burst(client, busy, marker, outcomes))
    try:
        pain = await budget_pain(watch, started)
        opened = await watch.first(InterventionOpened.TYPE, pain.at)
        _, allocation = await throttle_of(watch, busy, pain.at)
        await asyncio.sleep(4)
        await stopped(driver)
        resolved = await watch.first(InterventionResolved.TYPE, pain.at, timeout=60)
        driver = asyncio.create_task(burst(client, busy, marker, outcomes))
        await until_refused(outcomes, timeout=150)
    finally:
        await stopped(driver)
        await watch.stop()
    episode_id = opened.data["intervention_id"]
    changes = [
        s for s in watch.of(PolicyChanged.TYPE) if s.data["record"]["intervention_id"] == episode_id
    ]
    return {
        "pain_to_throttle_s": allocation.at - pain.at,
        "recovery_s": resolved.at - pain.at,
        "policy_changes": float(len(changes)),
        "overspend_usd": max(0.0, served(fake, marker) * CALL_USD - CAP_USD),
    }


async def scale(ctx: Context) -> dict[str, float]:
    """One scale episode on a system of its own: seconds from the first item queued to the
    spawn step, to the queue drained and to the retire step, and the policy changes."""
    system = await ctx.fixture(
        "scale-system", lambda: launched(ctx, suffix="scale", env=SCALE_ENV, workers=False)
    )
    base = await spawn_worker(system.http)
    system.agents.add(base)
    async with open_probe(ctx.url, system.namespace) as probe:
        watch = await scale_watch(probe, base)
        try:
            run = await scale_episode(system.http, probe, watch, base)
        finally:
            await watch.stop()
    system.agents.update(run.spawned.data["agent_ids"])
    return {
        "to_spawn_s": run.spawned.at - run.started,
        "to_drained_s": run.drained_at - run.started,
        "recovery_s": run.retired.at - run.started,
        "policy_changes": float(policy_changes(watch, run)),
    }


async def structure(ctx: Context) -> dict[str, float]:
    """One structure episode on a system of its own: seconds from the first item offered to
    S4's proposal, to the workers re-homed in the child and to root's variety below capacity
    (`recovery_s`: from overload to relief), then to the child retired, and the structural
    changes (at most 2)."""
    system = await ctx.fixture(
        "structure-system",
        lambda: launched(ctx, suffix="structure", env=STRUCTURE_ENV, workers=False),
    )
    agents = [await spawn_worker(system.http, slots=2) for _ in range(2)]
    system.agents.update(agents)
    async with open_probe(ctx.url, system.namespace) as probe:
        watch = await structure_watch(probe, agents)
        try:
            run = await structure_episode(system.http, probe, watch, set(agents))
        finally:
            await watch.stop()
    return {
        "to_proposal_s": run.proposal.at - run.started,
        "to_moved_s": max(s.at for s in run.moved) - run.started,
        "recovery_s": run.relieved_at - run.started,
        "to_retired_s": run.retired.at - run.started,
        "changes": float(structural_changes(watch, run.started)),
    }


@benchmark("loop.recovery", rounds=1, deadline_s=900)
async def recovery(ctx: Context) -> Figures:
    """The closed loop on a system of its own (`LOOP_ENV` clocks): an `api` agent fed 20
    commands/s through S2; its upstream fails until S5 intervenes plus 6 s, then heals.
    Per episode: failure to intervention, healing to viability above its threshold
    (`recovery_s`, also in pain half-lives), and the policy changes carrying the
    intervention's id (damping: at most 2). Then one cost episode (`cost_*`): an llm_worker
    pushed past 80% of its share of a 0.15 USD daily budget, then on to its cap: pain to
    the throttle's allocation, pain to the episode's resolution, its policy changes, and the
    USD the fake Messages API served beyond the cap. Then one scale episode (`scale_*`), on
    a system of its own with `SCALE_ENV`'s clocks: 40 items queued for a `worker` type whose
    one worker is throttled to 1/s; seconds from the first item queued to S3's spawn step,
    to the last item served and to S3's retire step (`scale_recovery_s`), and the policy
    changes in between (the expansive one and the one scaling back). Then one structure
    episode (`structure_*`), on a system of its own with `STRUCTURE_ENV`'s clocks: distinct
    work for two workers until S4 proposes a child for them; seconds from the first item to
    the proposal, to the workers re-homed, to root's variety below capacity
    (`structure_recovery_s`) and to the idle child retired, and the structural changes."""
    results: list[dict[str, float]] = []
    # First: operations is told the upstream and the Messages API when it starts.
    with Upstream() as upstream, FakeAnthropic() as fake:
        env = {**loop_env(upstream), **COST_ENV, **priced(fake).env()}
        system = await ctx.fixture(
            "loop-system", lambda: launched(ctx, suffix="loop", env=env, workers=False)
        )
        agent_id = await spawn_api_agent(system.http, upstream)
        system.agents.add(agent_id)
        async with open_probe(ctx.url, system.namespace) as probe:
            watch = Watch(probe)
            await watch.start(agent_id)
            driver = asyncio.create_task(offer_work(probe, agent_id))
            try:
                for _ in range(EPISODES["quick" if ctx.quick else "full"]):
                    results.append(await episode(system, watch, upstream))
            finally:
                driver.cancel()
                await watch.stop()
            cost = await cost_episode(system, probe, fake)
    scaled = await scale(ctx)
    grown = await structure(ctx)
    figures = summary(results, float(LOOP_ENV["ALGEDONIC_HALF_LIFE_S"]))
    return (
        figures
        | {f"cost_{name}": value for name, value in cost.items()}
        | {f"scale_{name}": value for name, value in scaled.items()}
        | {f"structure_{name}": value for name, value in grown.items()}
    )


def summary(results: list[dict[str, Any]], half_life_s: float) -> Figures:
    recovery_s = statistics.median(r["recovery_s"] for r in results)
    return {
        "episodes": float(len(results)),
        "pain_to_intervention_p50_s": statistics.median(
            r["pain_to_intervention_s"] for r in results
        ),
        "recovery_p50_s": recovery_s,
        "recovery_max_s": max(r["recovery_s"] for r in results),
        "recovery_half_lives": recovery_s / half_life_s,
        "policy_changes_max": max(r["policy_changes"] for r in results),
    }
