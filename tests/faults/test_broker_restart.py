"""The broker SIGKILLed and restarted in the middle of 10,000 commands to one worker agent.

The seven services run as processes on a node of this module's own. The sender publishes
with confirms and retries every publish that fails; the node is killed once a third of the
commands are confirmed and restarted (same name, data and ports) a few seconds later. Then:
every confirmed command has its result, each was executed once (duplicates are absorbed by
command id), every service's `/readyz` said 503 while the broker was away and 200 after,
and the system answers REST requests again without being restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.faults import (
    QUORUM_SETTLE_S,
    Report,
    ResultLog,
    Sender,
    audit,
    sender_bus,
    spawn,
    start_system,
    wait_readiness,
)
from tests.support.rabbitmq import PrivateRabbitMQ
from tests.support.tokens import bearer
from vsm.contract.operations import AgentCommand

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COMMANDS = 10_000
KILL_AFTER = COMMANDS // 3
OUTAGE_S = 3.0


@pytest.fixture(scope="module")
def system(
    own_node: PrivateRabbitMQ, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSystem]:
    running = start_system(own_node.url, Path(tmp_path_factory.mktemp("logs")))
    yield running
    running.stop()


@pytest.mark.timeout(300)
async def test_a_broker_crash_mid_stream_loses_no_confirmed_command(
    own_node: PrivateRabbitMQ, system: LocalSystem, report: Report
) -> None:
    namespace = system.env["VSM_NAMESPACE"]
    results = ResultLog(own_node.url, namespace)
    async with (
        sender_bus(own_node.url, namespace) as bus,
        httpx.AsyncClient(headers=bearer()) as http,
    ):
        agent_id = await spawn(bus, "worker", allocation=8)
        await results.start()
        await asyncio.sleep(QUORUM_SETTLE_S)

        sender = Sender(bus, "worker", agent_id)
        commands = [
            AgentCommand(command_type="process_data", data={"data": {"n": i}})
            for i in range(COMMANDS)
        ]
        sending = asyncio.create_task(sender.send_all(commands))
        await sender.wait_confirmed(KILL_AFTER)

        await asyncio.to_thread(own_node.kill)
        killed_at = time.monotonic()
        in_flight = len(sender.confirmed - results.seen.keys())
        confirmed_before_kill = set(sender.confirmed)
        down_after_s, during = await wait_readiness(system, http, 503, timeout=15)
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed_at)))
        failures_during_outage = sender.failures

        await asyncio.to_thread(own_node.restart)
        outage_s = time.monotonic() - killed_at
        up_after_s, after = await wait_readiness(system, http, 200, timeout=60)

        await asyncio.wait_for(sending, timeout=120)
        ids = {c.command_id for c in commands}
        missing = await results.wait_for(ids, timeout=90)
        measures = await audit(bus, agent_id)
        depth = await results.depth()
        state = await audit(bus, agent_id, "state_dump")
        queues = await asyncio.to_thread(
            own_node.ctl,
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        )

        gateway = system.url("mcp-gateway")
        answer = await http.post(
            f"{gateway}/api/vsm/agents/{agent_id}/command",
            json={"type": "process_data", "data": {"data": "after the restart"}},
            timeout=30,
        )
    await results.stop()

    report(
        "broker_restart",
        commands=COMMANDS,
        in_flight=in_flight,
        processed=len(ids & results.seen.keys()),
        lost=len(missing),
        executions=measures["succeeded"],
        duplicates_absorbed=measures["repeats"],
        duplicate_results=results.duplicates,
        publish_failures=sender.failures,
        retried_commands=len(sender.retried),
        errors=dict(sender.errors),
        outage_s=round(outage_s, 1),
        readyz_503_after_s=round(down_after_s, 1),
        readyz_200_after_restart_s=round(up_after_s, 1),
    )
    assert sender.confirmed == ids
    index = {c.command_id: i for i, c in enumerate(commands)}
    assert not missing, (
        f"{len(missing)} confirmed commands never processed: "
        f"indices {sorted(index[m] for m in missing)}; retried {len(missing & sender.retried)}; "
        f"confirmed before the kill {len(missing & confirmed_before_kill)}; "
        f"unreadable results {results.unreadable[:3]}; left on the log {depth}; envelopes "
        f"{[sender.envelopes[m] for m in sorted(missing, key=index.__getitem__)[:5]]}; "
        f"agent {state['resources']}; queues (ready, unacked, consumers):\n{queues}"
    )
    assert failures_during_outage > 0, "no publish failed while the broker was away"
    assert set(during.values()) == {503}, during
    assert set(after.values()) == {200}, after
    # Exactly once in effect: one execution per command, every repeat answered from memory.
    assert measures["succeeded"] == COMMANDS
    assert measures["failed"] == 0
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"
