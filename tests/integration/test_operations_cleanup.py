"""The results exchanges of terminated agents are deleted in the background (`Cleanup`), on the
real broker: an agent spawned again under the same id keeps its new exchange, whether the
earlier one's deletion was still waiting or already under way; a graceful stop finishes what
is pending, and says how much it could not; a replica starting deletes again the exchanges
of the agents terminated lately (those a replica that died first left); only the replica that
logs a termination deletes the exchange, once, wherever the agent ran; a deletion the broker
refuses is counted as failed and tried again until the exchange is gone."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from tests.support.cleanup import delete_namespace, exchange_exists
from tests.support.polling import eventually
from tests.support.rabbitmq import PrivateRabbitMQ
from vsm.contract import topology
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    REGISTRY_LOG,
    AgentSpawned,
    AgentTerminated,
    partition_of,
    partition_queue,
    results_exchange,
)
from vsm.kit.bus import Bus
from vsm.kit.egress import EgressPolicy, OnDemand
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.operations.agents.base import Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.cleanup import Cleanup
from vsm.operations.host import AgentHost
from vsm.operations.metrics import create_metrics
from vsm.operations.registry import Registry, new_agent
from vsm.operations.system1 import System1
from vsm.operations.wiring import declare_agent, declare_pool, declare_shared

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAITING, UNDER_WAY = "worker-c1ea0000aaaa", "worker-c1ea0000bbbb"
DRAINED = [f"worker-c1ea0000cc{k:02d}" for k in range(3)]
ABANDONED = [f"worker-c1ea0000dd{k:02d}" for k in range(3)]
RESPAWNED = "worker-c1ea0000eeee"
LEFT_BY_A_CRASH = "worker-c1ea0000ffff"
HOSTED_LEFT = "tally-c1ea0000ffee"
REFUSED, REFUSED_THEN_CLAIMED = "worker-c1ea00003333", "worker-c1ea00004444"
RUN_BY_THE_LOGGER, RUN_ELSEWHERE = "worker-c1ea00001111", "worker-c1ea00002222"
ALL = [
    WAITING,
    UNDER_WAY,
    *DRAINED,
    *ABANDONED,
    RESPAWNED,
    LEFT_BY_A_CRASH,
    HOSTED_LEFT,
    RUN_BY_THE_LOGGER,
    RUN_ELSEWHERE,
]
PARTITIONS = 16
"""The host's default, as `System1` places agents."""


@pytest.fixture
async def runtime(amqp_url: str, namespace: str) -> AsyncIterator[Runtime]:
    settings = ServiceSettings(
        amqp_url=amqp_url, vsm_namespace=namespace, instance_id="cleanup", log_format="console"
    )
    runtime = Runtime("operations", settings)
    await runtime.bus.start()
    try:
        await declare_shared(runtime.bus, PARTITIONS)
        yield runtime
    finally:
        await runtime.bus.stop()
        await delete_namespace(
            amqp_url,
            namespace,
            queues=[AGENT_DEAD_LETTERS, *(partition_queue(k).name for k in range(PARTITIONS))],
            exchanges=[results_exchange(a).name for a in ALL],
        )


@pytest.fixture
def bus(runtime: Runtime) -> Bus:
    return runtime.bus


async def test_an_agent_spawned_again_under_its_id_keeps_its_results_exchange(
    bus: Bus, amqp_url: str, namespace: str
) -> None:
    ns = Namespace(namespace).name
    cleanup = Cleanup(bus)
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        for agent_id in (WAITING, UNDER_WAY):
            await declare_agent(bus, agent_id, 0)
            cleanup.forget([agent_id])  # terminated: its deletion left to the worker
            if agent_id == UNDER_WAY:
                await asyncio.sleep(0)  # the worker takes it up
                assert agent_id in cleanup.deleting
            else:
                assert agent_id in cleanup.waiting

            await cleanup.claim(agent_id)  # spawned again: what `System1._place` does first
            await declare_agent(bus, agent_id, 0)

        assert await cleanup.drain(30) == 0
        own = await channel.declare_queue(exclusive=True, auto_delete=True)
        everyone = await channel.declare_queue(exclusive=True, auto_delete=True)
        await everyone.bind(ns(topology.S1_RESULTS.name), routing_key="#")
        for agent_id in (WAITING, UNDER_WAY):
            results = ns(results_exchange(agent_id).name)
            assert await exchange_exists(connection, results), agent_id
            await own.bind(results, routing_key="#")
            exchange = await channel.get_exchange(results, ensure=False)
            await exchange.publish(aio_pika.Message(agent_id.encode()), f"worker.{agent_id}.x")
        for queue in (own, everyone):  # the observer of each, and of all, hears both
            heard = set()
            async with queue.iterator(timeout=10) as messages:
                async for message in messages:
                    heard.add(message.body.decode())
                    if len(heard) == 2:
                        break
            assert heard == {WAITING, UNDER_WAY}


async def test_a_graceful_stop_drains_the_deletions_pending_and_counts_what_it_cannot(
    bus: Bus, amqp_url: str, namespace: str
) -> None:
    ns = Namespace(namespace).name
    for agent_id in [*DRAINED, *ABANDONED]:
        await declare_agent(bus, agent_id, 0)
    drained, abandoned = Cleanup(bus), Cleanup(bus)
    drained.forget(DRAINED)
    abandoned.forget(ABANDONED)
    assert len(drained) == len(abandoned) == 3  # what the gauge shows

    assert await abandoned.drain(0) == 3  # no time left: all three logged as left undone
    assert await drained.drain(30) == 0
    assert len(drained) == 0

    async with await aio_pika.connect(amqp_url) as connection:
        for agent_id in DRAINED:
            assert not await exchange_exists(connection, ns(results_exchange(agent_id).name)), (
                agent_id
            )
        for agent_id in ABANDONED:  # the leak a stop short of time leaves (and says)
            assert await exchange_exists(connection, ns(results_exchange(agent_id).name)), agent_id


async def test_a_spawn_takes_its_agent_id_back_from_the_cleanup_before_declaring(
    runtime: Runtime, amqp_url: str, namespace: str
) -> None:
    """`System1._place` (what a spawn does before logging) under the id of an agent whose
    deletion is still pending: the exchange it declares stays."""
    host = AgentHost(runtime.bus, runtime.direct, None, 60.0, "cleanup")
    system1 = System1(runtime.bus, host, EgressPolicy())
    earlier = new_agent("worker", {}, datetime.now(UTC)).model_copy(update={"agent_id": RESPAWNED})
    await declare_agent(runtime.bus, RESPAWNED, partition_of(RESPAWNED, PARTITIONS))
    host.cleanup.forget([RESPAWNED])  # the earlier agent of that id, terminated

    placed = await system1._place(earlier)  # spawned again

    assert placed.agent_id == RESPAWNED
    assert await host.cleanup.drain(30) == 0
    async with await aio_pika.connect(amqp_url) as connection:
        assert await exchange_exists(
            connection, Namespace(namespace).name(results_exchange(RESPAWNED).name)
        )


async def test_a_replica_starting_deletes_again_what_a_terminated_agent_left(
    runtime: Runtime, amqp_url: str, namespace: str
) -> None:
    """The registry replayed shows an agent terminated a moment ago whose exchange is still
    there (the replica that logged it died before its deletion): deleted once caught up."""
    host = AgentHost(runtime.bus, runtime.direct, None, 60.0, "cleanup")
    system1 = System1(runtime.bus, host, EgressPolicy())
    now = datetime.now(UTC)
    worker = new_agent("worker", {}, now).model_copy(update={"agent_id": LEFT_BY_A_CRASH})
    # An agent of a type an agent host offers: operations declared its exchange, deletes it.
    hosted = worker.model_copy(update={"agent_id": HOSTED_LEFT, "agent_type": "tally"})
    hosted = hosted.model_copy(update={"pool": "tally", "partition": 0})
    agent_host = System1(
        runtime.bus,
        AgentHost(runtime.bus, runtime.direct, None, 60.0, "host", pools=["tally"]),
        EgressPolicy(),
        cleans_up=False,
    )
    await declare_pool(runtime.bus, "tally", 1)
    for agent in (worker, hosted):
        await declare_agent(runtime.bus, agent.agent_id, 0, agent.pool)
        ended = AgentTerminated(
            agent_id=agent.agent_id, agent_type=agent.agent_type, reason="test", terminated_at=now
        )
        for replayed in (system1, agent_host):
            await replayed.apply(f"s-{agent.agent_id}", AgentSpawned(agent=agent), live=False)
            await replayed.apply(f"t-{agent.agent_id}", ended, live=False)

    await system1.caught_up()
    await agent_host.caught_up()

    assert len(host.cleanup) == 2
    assert len(agent_host.host.cleanup) == 0  # it logs no termination: not its to delete
    assert await host.cleanup.drain(30) == 0
    async with await aio_pika.connect(amqp_url) as connection:
        for agent_id in (LEFT_BY_A_CRASH, HOSTED_LEFT):
            name = Namespace(namespace).name(results_exchange(agent_id).name)
            assert not await exchange_exists(connection, name), agent_id


def replica(runtime: Runtime, instance: str) -> System1:
    """One operations replica's S1 on `runtime`'s bus, able to run workers."""
    host = AgentHost(runtime.bus, runtime.direct, None, 60.0, instance)
    nowhere = EgressPolicy()
    host.resources = Resources(Outbound(OnDemand(nowhere, 5.0), nowhere), None, 0.0)
    return System1(runtime.bus, host, nowhere)


async def test_only_the_replica_logging_a_termination_deletes_the_exchange_once(
    runtime: Runtime, amqp_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas hear of two workers; one runs on each. Both are terminated through the
    first, the second applying the termination from the log as its journal would: each
    exchange is deleted once (one broker round trip), by the replica that logged it."""
    deleted: Counter[str] = Counter()
    delete_exchange = runtime.bus.declarations.delete_exchange

    async def counted(name: str) -> None:
        deleted[name] += 1
        await delete_exchange(name)

    monkeypatch.setattr(runtime.bus.declarations, "delete_exchange", counted)
    await runtime.bus.declare(REGISTRY_LOG)
    logging, other = replica(runtime, "logging"), replica(runtime, "other")
    now = datetime.now(UTC)
    for agent_id, runs_on in ((RUN_BY_THE_LOGGER, logging), (RUN_ELSEWHERE, other)):
        agent = new_agent("worker", {}, now).model_copy(update={"agent_id": agent_id})
        placed = await logging._place(agent)
        for system1 in (logging, other):
            await system1.apply(f"s-{agent_id}", AgentSpawned(agent=placed), live=True)
        assert await runs_on.host.activated(agent_id) is not None

    for agent_id in (RUN_BY_THE_LOGGER, RUN_ELSEWHERE):
        ended = await logging.terminate(agent_id, "test")
        event = AgentTerminated(
            agent_id=agent_id, agent_type="worker", reason="test", terminated_at=ended.terminated_at
        )
        await other.apply(f"t-{agent_id}", event, live=True)  # as its journal would
    assert await logging.host.cleanup.drain(30) == 0
    assert await other.host.cleanup.drain(30) == 0

    assert not logging.host.agents  # both retired
    assert not other.host.agents
    ns = Namespace(namespace).name
    both = (RUN_BY_THE_LOGGER, RUN_ELSEWHERE)
    assert {a: deleted[results_exchange(a).name] for a in both} == dict.fromkeys(both, 1)
    async with await aio_pika.connect(amqp_url) as connection:
        for agent_id in both:
            name = ns(results_exchange(agent_id).name)
            assert not await exchange_exists(connection, name), agent_id


async def test_a_refused_deletion_is_counted_and_tried_again_until_the_exchange_is_gone(
    namespace: str,
) -> None:
    """On a node of its own, the broker refuses the deletion (the user may configure nothing
    for a while: ACCESS_REFUSED, the channel closed): not done, so still pending, and
    counted; a spawn claiming an id meanwhile stops its retries at once (it does not wait for
    the broker); once allowed again, a later try deletes the other exchange."""
    with PrivateRabbitMQ() as node:
        settings = ServiceSettings(
            amqp_url=node.url, vsm_namespace=namespace, instance_id="cleanup", log_format="console"
        )
        runtime = Runtime("operations", settings)
        await runtime.bus.start()
        try:
            await declare_shared(runtime.bus, PARTITIONS)
            for agent_id in (REFUSED, REFUSED_THEN_CLAIMED):
                await declare_agent(runtime.bus, agent_id, 0)
            await runtime.bus.declarations.close()  # no channel remembers it was allowed
            cleanup, prometheus = Cleanup(runtime.bus), CollectorRegistry()
            create_metrics(prometheus, Registry(), cleanup)

            def metric(name: str) -> float | None:
                return prometheus.get_sample_value(name)

            await asyncio.to_thread(node.ctl, "set_permissions", "guest", "^$", ".*", ".*")
            cleanup.forget([REFUSED, REFUSED_THEN_CLAIMED])

            async def failed() -> bool:
                return (metric("vsm_agent_cleanup_failures_total") or 0) >= 2

            await eventually(failed, timeout=20, what="both failed deletions counted")
            assert metric("vsm_agent_cleanups_pending") == 2  # not done
            await asyncio.wait_for(cleanup.claim(REFUSED_THEN_CLAIMED), timeout=5)
            assert metric("vsm_agent_cleanups_pending") == 1
            name = Namespace(namespace).name(results_exchange(REFUSED).name)
            async with await aio_pika.connect(node.url) as connection:
                assert await exchange_exists(connection, name)

                await asyncio.to_thread(node.ctl, "set_permissions", "guest", ".*", ".*", ".*")
                assert await cleanup.drain(30) == 0

                assert not await exchange_exists(connection, name)
                claimed = Namespace(namespace).name(results_exchange(REFUSED_THEN_CLAIMED).name)
                assert await exchange_exists(connection, claimed)
            assert metric("vsm_agent_cleanups_pending") == 0
            assert (metric("vsm_agent_cleanup_failures_total") or 0) >= 2
        finally:
            await runtime.bus.stop()
