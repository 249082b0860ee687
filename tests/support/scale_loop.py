"""The closed loop of scale as a scenario, shared by its test and its benchmark.

Work for the `worker` type queues behind one throttled worker; S2 reports the pressure; S4
sees it sustained and proposes an expansive adaptation; S5 adopts it as a policy; S3 carries
it out by asking operations for more workers; S2 dispatches the waiting work to them and
the queue drains; once nothing waits, S4 proposes the count it started from and S3 retires
the workers it spawned (`scale_episode`). It needs the system launched with `SCALE_ENV`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.closed_loop import Seen, Watch
from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction, AdaptationProposal
from vsm.contract.control import AllocationChanged, allocation_key
from vsm.contract.coordination import WorkItem, work_key
from vsm.contract.operations import CommandResult
from vsm.contract.policy import PolicyChanged

WORK = 40
"""Items offered to the `worker` type in one episode."""
SCALE_ENV = {
    "OSCILLATION_INTERVAL_S": "0.5",
    "SCALE_QUEUED_PER_AGENT": "2",
    "SCALE_SUSTAIN_S": "1",
    "SCALE_CALM_S": "3",
    "SCALE_MAX_STEP": "2",
    "ADAPTATION_SPAWNS_PER_HOUR": "3",
    "ISOLATION_PROBE_S": "2",
}
"""Fast clocks: S2 reports pressure twice a second, S4 scales after 1 s of queueing (over 2
items per worker) by at most 2 workers, and back after 3 s of calm; adaptation may spawn 3
workers an hour; an isolated agent is probed after 2 s."""


async def spawn_worker(gateway: httpx.AsyncClient, slots: int = 1) -> str:
    config = {"allocation": slots, "max_allocation": 4}
    response = await gateway.post("/api/vsm/agents", json={"type": "worker", "config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


async def store(gateway: httpx.AsyncClient, policy_type: str, policy: dict[str, Any]) -> None:
    response = await gateway.put(
        f"/api/vsm/policies/{policy_type}", json={"policy": policy, "reason": "test"}
    )
    assert response.status_code == 200, response.text


async def offer(probe: Probe, lane: str, count: int) -> list[str]:
    """Work for any worker (not one named agent), through S2's lanes."""
    ids = [f"{lane}-{n}" for n in range(count)]
    for command_id in ids:
        item = WorkItem(
            lane=lane,
            agent_type="worker",
            command_id=command_id,
            command_type="process_data",
            data={"data": {"n": command_id}},
        )
        await probe.bus.publish(topology.COORDINATION, item, routing_key=work_key(lane))
    return ids


def caused_by(watch: Watch, message_type: str, cause: Seen, **data: Any) -> Seen | None:
    """The first `message_type` seen whose causation id is `cause`'s id (and with `data`)."""
    return next(
        (
            s
            for s in watch.of(message_type)
            if s.envelope.get("causationid") == cause.envelope["id"]
            and all(s.data.get(k) == v for k, v in data.items())
        ),
        None,
    )


async def effect(watch: Watch, message_type: str, cause: Seen, what: str, **data: Any) -> Seen:
    async def seen() -> Seen | None:
        return caused_by(watch, message_type, cause, **data)

    return await eventually(seen, timeout=30, interval=0.1, what=what)


def scale_of(seen: Seen) -> dict[str, int]:
    return dict(seen.data["policy"].get("scale", {}))


@dataclass(frozen=True)
class ScaleEpisode:
    """What one episode showed, in order."""

    started: float
    """When the first item was offered (the monotonic clock of `Seen.at`)."""
    up: Seen
    adopted: Seen
    spawned: Seen
    served: dict[str, Seen]
    """Each offered item's result."""
    down: Seen
    readopted: Seen
    retired: Seen

    @property
    def drained_at(self) -> float:
        return max(s.at for s in self.served.values())


async def scale_watch(probe: Probe, base: str) -> Watch:
    """A watch on proposals, policies, adaptation steps, the base worker's allocations and
    every result."""
    watch = Watch(probe)
    await watch.listen(
        (topology.INTELLIGENCE.name, "adaptation.proposal.*"),
        (topology.POLICY.name, ""),
        (topology.CONTROL.name, "adaptation.#"),
        (topology.CONTROL.name, allocation_key(base)),
        (topology.S1_RESULTS.name, "#"),
    )
    return watch


async def scale_episode(
    gateway: httpx.AsyncClient, probe: Probe, watch: Watch, base: str
) -> ScaleEpisode:
    """Throttle `base` (the type's only worker) to 1 item/s, offer `WORK` items, and follow
    the loop up to the retire step (each arrow by causation id)."""
    await store(
        gateway,
        "throttle",
        {"limits": [{"target": base, "max_rate_per_s": 1, "reason": "slow on purpose"}]},
    )
    await watch.first(AllocationChanged.TYPE, timeout=30)  # S2 holds it to 1/s from now
    lane = f"scale-{secrets.token_hex(3)}"
    started = time.monotonic()
    offered = set(await offer(probe, lane, WORK))

    # S4 sees the queue sustained and proposes more workers ...
    async def proposed_up() -> Seen | None:
        return next(
            (
                s
                for s in watch.of(AdaptationProposal.TYPE, started)
                if s.data["kind"] == "expansive" and scale_of(s).get("worker", 0) > 1
            ),
            None,
        )

    up = await eventually(proposed_up, timeout=30, what="an expansive proposal")
    # ... S5 adopts it as a policy version caused by the proposal ...
    adopted = await effect(watch, PolicyChanged.TYPE, up, "the adopted policy")
    # ... and S3 has operations spawn the workers, caused by the policy.
    spawned = await effect(watch, AdaptationAction.TYPE, adopted, "the spawn step")

    # The queue drains.
    def served() -> dict[str, Seen]:
        return {
            s.data["command_id"]: s
            for s in watch.of(CommandResult.TYPE)
            if s.data["command_id"] in offered
        }

    async def drained() -> bool | None:
        return len(served()) == WORK or None

    try:
        await eventually(drained, timeout=30, what="every item served")
    except AssertionError:
        print(sorted(offered - set(served())), watch.story())
        raise

    # Nothing waits any more: S4 proposes the count it started from, S3 retires its own.
    async def proposed_down() -> Seen | None:
        return next(
            (s for s in watch.of(AdaptationProposal.TYPE, up.at) if scale_of(s) == {"worker": 1}),
            None,
        )

    down = await eventually(proposed_down, timeout=30, what="the proposal to scale back")
    readopted = await effect(watch, PolicyChanged.TYPE, down, "the policy to scale back")
    retired = await effect(watch, AdaptationAction.TYPE, readopted, "the retire step")
    return ScaleEpisode(started, up, adopted, spawned, served(), down, readopted, retired)


def policy_changes(watch: Watch, episode: ScaleEpisode) -> int:
    """Policy versions S5 published from the first item offered to the retire step."""
    return len(
        [s for s in watch.of(PolicyChanged.TYPE, episode.started) if s.at <= episode.retired.at]
    )
