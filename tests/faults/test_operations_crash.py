"""`operations` SIGKILLed after a command's side effect and before its ack: the effect is once.

An `api` agent calls a loopback ledger (tests/faults/effects.py) for each of a stream of
commands. The ledger holds its answer to one call, after the effect is done; the test then
SIGKILLs `operations`, so that command (and whatever else was unacked) is redelivered to the
restarted process. The agent's memory of done commands died with it; the ledger recognises
the repeat by the `Idempotency-Key` the agent sends (the command id), so every effect happens
exactly once while the calls are at least once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scripts.localrun import LocalSystem, egress_allowance
from tests.faults.effects import EffectLedger
from tests.support.faults import (
    QUORUM_SETTLE_S,
    Report,
    ResultLog,
    Sender,
    clean_up,
    sender_bus,
    spawn,
    start_system,
)
from vsm.contract.operations import AgentCommand

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COMMANDS = 300
HOLD_AT = 100
AGENTS: list[str] = []


@pytest.fixture(scope="module")
def ledger() -> Iterator[EffectLedger]:
    with EffectLedger(hold_at=HOLD_AT) as server:
        yield server


@pytest.fixture(scope="module")
def system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, ledger: EffectLedger
) -> Iterator[LocalSystem]:
    running = start_system(
        amqp_url,
        Path(tmp_path_factory.mktemp("logs")),
        ["operations"],
        **egress_allowance(f"{ledger.url}/"),
    )
    yield running
    running.stop()
    asyncio.run(clean_up(amqp_url, running.env["VSM_NAMESPACE"], AGENTS, ["faults.results"]))


@pytest.fixture
async def results(amqp_url: str, system: LocalSystem) -> AsyncIterator[ResultLog]:
    log = ResultLog(amqp_url, system.env["VSM_NAMESPACE"])
    await log.start()
    yield log
    await log.stop()


@pytest.mark.timeout(240)
async def test_a_command_redelivered_after_a_crash_has_its_effect_once(
    amqp_url: str, system: LocalSystem, ledger: EffectLedger, results: ResultLog, report: Report
) -> None:
    async with sender_bus(amqp_url, system.env["VSM_NAMESPACE"]) as bus:
        agent_id = await spawn(bus, "api", base_urls=[f"{ledger.url}/"], retries=0)
        AGENTS.append(agent_id)
        await asyncio.sleep(QUORUM_SETTLE_S)
        killed_pid = system.processes["operations"].pid

        commands = [
            AgentCommand(
                command_type="call", data={"method": "POST", "url": "effects", "json": {"n": i}}
            )
            for i in range(COMMANDS)
        ]
        sender = Sender(bus, "api", agent_id)
        sending = asyncio.create_task(sender.send_all(commands))
        assert await asyncio.to_thread(ledger.held.wait, 60), "the ledger held no call"

        system.kill("operations")
        await asyncio.to_thread(system.processes["operations"].wait, 10)
        in_flight = len(sender.confirmed - results.seen.keys())
        effects_before_restart = sum(ledger.effects.values())
        ledger.release.set()

        system.start(["operations"])
        await asyncio.to_thread(system.wait_ready, 150, ["operations"])
        await asyncio.wait_for(sending, timeout=60)
        ids = {c.command_id for c in commands}
        missing = await results.wait_for(ids, timeout=90)

    assert ledger.held_key is not None
    report(
        "operations_sigkill",
        commands=COMMANDS,
        in_flight=in_flight,
        processed=len(ids & results.seen.keys()),
        lost=len(missing),
        effects=sum(ledger.effects.values()),
        effects_before_kill=effects_before_restart,
        repeated_calls_absorbed=ledger.repeated_calls,
        calls_for_held_command=ledger.calls[ledger.held_key],
        duplicate_results=results.duplicates,
    )
    assert system.processes["operations"].pid != killed_pid
    assert not missing, f"{len(missing)} commands never processed"
    assert all(results.results[i].status == "ok" for i in ids)
    # The held command was done, its process killed, and it was done again by the new one...
    assert ledger.calls[ledger.held_key] >= 2
    # ...but its effect, like every other, happened once: keys are the command ids.
    assert set(ledger.effects) == ids
    assert set(ledger.effects.values()) == {1}
    assert ledger.unkeyed == 0
