"""A three-node RabbitMQ cluster loses a node, or has one frozen, under 10,000 commands.

The seven services run as processes whose `AMQP_URL` lists the three nodes of a cluster of
this module's own. They start on the first node that answers, so the queues they declare are
led from there (RabbitMQ places a quorum queue's leader on its declarer's node), each with a
replica on every node. The sender publishes commands to one worker agent with confirms and
retries every publish that fails. Counted as Jepsen counts: `confirmed` (commands the broker
confirmed), `delivered` (confirmed commands whose result came back), `lost` (confirmed, no
result), `duplicated` (executions beyond one per command; repeats the agent answers from its
memory are `absorbed`, not executed).

1. The node that leads the agent's command queue is SIGKILLed once a third of the commands
   is confirmed: none is lost or executed twice; every service that was connected to that
   node answers 503 on `/readyz`, then 200 from another node, in the same process; the REST
   API answers again within `REST_BOUND_S` (the figure is printed).
2. The node that leads the next agent's queue is SIGSTOPped for 30 s and resumed: none is
   lost or executed twice, and the node rejoins (running, every replica online again).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.faults import (
    QUORUM_SETTLE_S,
    Report,
    ResultLog,
    Sender,
    audit,
    rest_client,
    sender_bus,
    spawn,
    start_system,
    wait_readiness,
)
from tests.support.rabbitmq import ClusterNode, ClusterTrace, PrivateCluster, alive
from vsm.contract import topology
from vsm.contract.operations import AgentCommand, partition_of, partition_queue
from vsm.kit.bus import Bus
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COMMANDS = 10_000
FAULT_AFTER = COMMANDS // 3
PAUSE_S = 30.0
TRACE_INTERVAL_S = float(os.environ.get("VSM_CLUSTER_TRACE_S", "0"))
"""Poll the cluster's queues, connections and channels this often around the kill (0: only
the test's own notes), into `cluster-trace.jsonl` next to the services' logs."""
REST_BOUND_S = 60.0
"""How soon after losing a node the REST API must answer again (generous: the figure is
printed; on a quiet machine it is a few seconds)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    """Three nodes of this module's own; their logs are kept; none outlives the module."""
    with PrivateCluster() as running:
        yield running
        pids = [pid for node in running.nodes for pid in node.pids()]
        kept = tmp_path_factory.mktemp("rabbitmq-logs")
        for index, node in enumerate(running.nodes):
            if node.directory is not None:
                shutil.copytree(node.directory / "log", kept / str(index), dirs_exist_ok=True)
    assert not any(alive(pid) for pid in pids), "a node's process outlived the cluster"


@pytest.fixture(scope="module")
def system(
    cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    running = start_system(cluster.url, Path(tmp_path_factory.mktemp("logs")), timeout=240)
    yield running
    running.stop()


@dataclass
class Counts:
    confirmed: int
    delivered: int
    lost: int
    duplicated: int
    absorbed: int
    duplicate_results: int
    publish_failures: int

    def figures(self) -> dict[str, int]:
        return dict(vars(self))


class Load:
    """`COMMANDS` commands to a fresh worker agent, its results read from a log of its own;
    on leaving, nothing of it is left running, whatever happened."""

    def __init__(self, bus: Bus, results: ResultLog) -> None:
        self.bus, self.results = bus, results
        self.agent_id = ""
        self.commands: list[AgentCommand] = []
        self.sender: Sender | None = None
        self.sending: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Load:
        self.agent_id = await spawn(self.bus, "worker", allocation=8)
        await self.results.start()
        await asyncio.sleep(QUORUM_SETTLE_S)  # see PrivateRabbitMQ.kill
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.sending is not None:
            self.sending.cancel()
            await asyncio.gather(self.sending, return_exceptions=True)
        await self.results.stop()

    async def start(self) -> Sender:
        """Send the commands; return once a third of them are confirmed."""
        self.sender = Sender(self.bus, "worker", self.agent_id)
        self.commands = [
            AgentCommand(command_type="process_data", data={"data": {"n": i}})
            for i in range(COMMANDS)
        ]
        self.sending = asyncio.create_task(self.sender.send_all(self.commands))
        await self.sender.wait_confirmed(FAULT_AFTER)
        return self.sender

    async def finish(self) -> tuple[Counts, dict[str, Any]]:
        """Wait for every confirm and every result; the counts, and the agent's own measures."""
        assert self.sender is not None
        assert self.sending is not None
        await asyncio.wait_for(self.sending, timeout=240)
        ids = {command.command_id for command in self.commands}
        missing = await self.results.wait_for(ids, timeout=120)
        measures = await audit(self.bus, self.agent_id)
        confirmed = self.sender.confirmed
        counts = Counts(
            confirmed=len(confirmed),
            delivered=len(confirmed & self.results.seen.keys()),
            lost=len(confirmed & missing),
            duplicated=measures["succeeded"] - len(ids),
            absorbed=measures["repeats"],
            duplicate_results=self.results.duplicates,
            publish_failures=self.sender.failures,
        )
        return counts, measures


class ReadinessWatch:
    """Each service's `/readyz`, polled on its own every 0.1 s: when its answer changed (0: no
    answer). A service's outage may last about a second, so no service waits for another."""

    def __init__(self, system: LocalSystem, client: httpx.AsyncClient) -> None:
        self.system, self.client = system, client
        self.changes: dict[str, list[tuple[float, int]]] = {name: [] for name in system.processes}
        self._tasks: list[asyncio.Task[None]] = []

    def __enter__(self) -> ReadinessWatch:
        self._tasks = [asyncio.create_task(self._watch(name)) for name in self.changes]
        return self

    def __exit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()

    async def _watch(self, name: str) -> None:
        seen, url = self.changes[name], f"{self.system.url(name)}/readyz"
        while True:
            try:
                code = (await self.client.get(url, timeout=3)).status_code
            except httpx.HTTPError:
                code = 0
            if not seen or seen[-1][1] != code:
                seen.append((time.monotonic(), code))
            await asyncio.sleep(0.1)

    def outage(self, name: str, since: float) -> tuple[float, float] | None:
        """(seconds after `since` it stopped answering 200, seconds after `since` it answered
        200 again), or None when it answered 200 throughout."""
        down = next((t for t, code in self.changes[name] if t >= since and code != 200), None)
        if down is None:
            return None
        up = next((t for t, code in self.changes[name] if t > down and code == 200), None)
        return round(down - since, 1), round(up - since, 1) if up is not None else float("inf")


async def rest_answers(
    rest: httpx.AsyncClient, path: str, since: float, timeout: float
) -> tuple[float, str]:
    """Seconds after `since` until `GET path` answers 200 (through the gateway to a service),
    and the last answer that was not 200 (for the failure message)."""
    last = "none"
    while time.monotonic() - since < timeout:
        try:
            response = await rest.get(path, timeout=5)
            if response.status_code == 200:
                return time.monotonic() - since, last
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as error:
            last = repr(error)
        await asyncio.sleep(0.25)
    return float("inf"), last


def replicas(cluster: PrivateCluster, namespace: str) -> dict[str, tuple[int, int]]:
    """Per quorum queue and stream of the namespace: (members, members online)."""
    return {
        queue["name"]: (len(queue["members"]), len(queue["online"]))
        for queue in cluster.queues(namespace)
        if queue["type"] in {"quorum", "stream"}
    }


async def queue_leader(
    cluster: PrivateCluster, namespace: str, queue: topology.Queue
) -> ClusterNode:
    return await asyncio.to_thread(cluster.leader, Namespace(namespace).name(queue.name))


@pytest.mark.timeout(900)
async def test_killing_the_node_that_leads_the_busiest_queues_loses_no_confirmed_command(
    cluster: PrivateCluster, system: LocalSystem, report: Report
) -> None:
    namespace = system.env["VSM_NAMESPACE"]
    async with (
        sender_bus(cluster.url, namespace) as bus,
        rest_client(system) as rest,
        httpx.AsyncClient() as http,
        Load(bus, ResultLog(cluster.url, namespace, "faults.results.kill")) as load,
    ):
        replicated = await asyncio.to_thread(replicas, cluster, namespace)
        target = await queue_leader(
            cluster, namespace, partition_queue(partition_of(load.agent_id, 16))
        )
        operations = topology.requests_queue("operations")
        requests_leader = await queue_leader(cluster, namespace, operations)
        pids = {name: process.pid for name, process in system.processes.items()}
        on_target = {name for name, pid in pids.items() if target in cluster.used_by(pid)}

        trace_path = system.log_dir / "cluster-trace.jsonl"
        with (
            ReadinessWatch(system, http) as watch,
            ClusterTrace(cluster, trace_path, pids, TRACE_INTERVAL_S) as trace,
        ):
            await load.start()
            trace.note("kill", node=target.nodename)
            killed_at = time.monotonic()  # kill() returns once the node's ports are closed
            await asyncio.to_thread(target.kill)
            trace.note("killed")
            path = f"/agents/{load.agent_id}"
            answered_s, refused = await rest_answers(rest, path, killed_at, REST_BOUND_S * 2)
            trace.note("rest_answered", after_s=answered_s, refused=refused)
            _, after = await wait_readiness(system, http, 200, timeout=REST_BOUND_S * 2)
            ready_s = time.monotonic() - killed_at
            trace.note("all_ready", after=after)
            moved = {name: [n.nodename for n in cluster.used_by(pids[name])] for name in on_target}
            counts, measures = await load.finish()
            trace.note("finished", counts=counts.figures())
        outages = {name: watch.outage(name, killed_at) for name in sorted(pids)}

        await asyncio.to_thread(target.restart)  # three nodes again, for the next test
        await asyncio.to_thread(cluster.wait_running, cluster.nodes)

    report(
        "cluster_node_sigkill",
        commands=COMMANDS,
        **counts.figures(),
        killed=target.nodename,
        operations_requests_leader=requests_leader.nodename,
        services_on_killed_node=len(on_target),
        rest_answers_after_s=round(answered_s, 1),
        all_ready_after_s=round(ready_s, 1),
        readyz_503_then_200_s=outages,
        trace=str(trace_path),
    )
    assert replicated, "the namespace has no quorum queue or stream"
    assert set(replicated.values()) == {(3, 3)}, replicated
    assert counts.confirmed == COMMANDS
    assert counts.lost == 0, f"{counts.lost} confirmed commands never processed"
    assert counts.delivered == COMMANDS
    assert counts.duplicated == 0, "a command was executed twice"
    assert measures["failed"] == 0
    assert counts.publish_failures > 0, "no publish failed: the sender never met the kill"
    assert answered_s < REST_BOUND_S, (
        f"REST answered {answered_s:.1f} s after the kill; before that: {refused}; "
        f"readiness after: {after}; outages: {outages}"
    )
    assert set(after.values()) == {200}, after
    assert on_target, f"no service was connected to {target.nodename}: the kill tested nothing"
    for name in on_target:
        outage = outages[name]
        assert outage is not None, f"{name} answered 200 throughout: {watch.changes[name]}"
        assert moved[name], f"{name} is connected to no node"
        assert target.nodename not in moved[name], f"{name} is still on the killed node"
    assert {name: p.pid for name, p in system.processes.items()} == pids  # none restarted


@pytest.mark.timeout(600)
async def test_a_node_paused_for_30_s_rejoins_without_loss(
    cluster: PrivateCluster, system: LocalSystem, report: Report
) -> None:
    namespace = system.env["VSM_NAMESPACE"]
    async with (
        sender_bus(cluster.url, namespace) as bus,
        rest_client(system) as rest,
        httpx.AsyncClient() as http,
        Load(bus, ResultLog(cluster.url, namespace, "faults.results.pause")) as load,
    ):
        target = await queue_leader(
            cluster, namespace, partition_queue(partition_of(load.agent_id, 16))
        )
        pids = {name: process.pid for name, process in system.processes.items()}
        on_target = sorted(name for name, pid in pids.items() if target in cluster.used_by(pid))

        with ReadinessWatch(system, http) as watch:
            sender = await load.start()
            paused_at = time.monotonic()
            await asyncio.to_thread(cluster.pause, target)
            confirmed_at_pause = len(sender.confirmed)
            await asyncio.sleep(PAUSE_S)
            confirmed_while_paused = len(sender.confirmed) - confirmed_at_pause
            await asyncio.to_thread(cluster.resume, target)
            rejoining = asyncio.create_task(
                asyncio.to_thread(rejoin, cluster, namespace, time.monotonic())
            )
            counts, measures = await load.finish()
        outages = {name: watch.outage(name, paused_at) for name in sorted(pids)}
        rejoined_s = await rejoining
        answer = await rest.get(f"/agents/{load.agent_id}")

    report(
        "cluster_node_sigstop",
        commands=COMMANDS,
        **counts.figures(),
        paused=target.nodename,
        pause_s=PAUSE_S,
        services_on_paused_node=len(on_target),
        confirmed_while_paused=confirmed_while_paused,
        rejoined_after_resume_s=round(rejoined_s, 1),
        readyz_not_200_then_200_s=outages,
    )
    assert counts.confirmed == COMMANDS
    assert counts.lost == 0, f"{counts.lost} confirmed commands never processed"
    assert counts.delivered == COMMANDS
    assert counts.duplicated == 0, "a command was executed twice"
    assert measures["failed"] == 0
    assert answer.status_code == 200, answer.text
    assert {name: p.pid for name, p in system.processes.items()} == pids  # none restarted


def rejoin(cluster: PrivateCluster, namespace: str, since: float, timeout: float = 120) -> float:
    """Seconds after `since` until all nodes run and every replica of the namespace is online."""
    cluster.wait_running(cluster.nodes, timeout)
    while set(replicas(cluster, namespace).values()) != {(3, 3)}:
        if time.monotonic() - since > timeout:
            raise AssertionError(f"replicas not all online: {replicas(cluster, namespace)}")
        time.sleep(1)
    return time.monotonic() - since
