"""A lost broker connection cancels every command handler at once; the agent must come out
of it whole: no concurrency slot leaked, no command id left "under way", and after a stop
the commands still waiting never start (they stay with the broker for the next consumer).

In-process on purpose: the cancellation storm is what aiormq does to its consumer tasks when
the connection drops, and its outcome (the agent's slots) is not visible from outside.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import BaseModel, ConfigDict

from tests.support.hosted import hosted
from vsm.agent import Agent as SdkAgent
from vsm.agent import AgentIdentity, JsonObject, command
from vsm.contract.operations import AgentCommand
from vsm.operations.agent import Agent, NotStarted
from vsm.operations.agents.base import AgentConfig


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Sleepy(SdkAgent[AgentConfig]):
    """Sleeps a little on each command, counting the commands it started."""

    name = "sleepy"

    def __init__(self, config: AgentConfig, identity: AgentIdentity) -> None:
        super().__init__(config, identity)
        self.started = 0

    @command
    async def process_data(self, request: Anything) -> JsonObject:
        """Sleep up to 10 ms, then answer what it was given."""
        self.started += 1
        await asyncio.sleep(random.uniform(0, 0.01))
        return JsonObject({"done": request.model_dump()})


async def agent_of(allocation: int) -> tuple[Agent, Sleepy]:
    made = await hosted(Sleepy, {"allocation": allocation}, built_in=True)
    assert isinstance(made.running, Sleepy)
    return made.agent, made.running


def commands(count: int) -> list[AgentCommand]:
    return [AgentCommand(command_type="process_data", data={"n": i}) for i in range(count)]


@pytest.mark.parametrize("seed", range(20))
async def test_cancelling_every_handler_at_once_leaks_no_slot(seed: int) -> None:
    random.seed(seed)
    agent, _ = await agent_of(allocation=4)
    handlers = [asyncio.create_task(agent.run(c)) for c in commands(64)]
    await asyncio.sleep(random.uniform(0, 0.03))
    for handler in handlers:
        handler.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await asyncio.sleep(0.05)  # slots given back under a shield are given back by now

    assert agent.slots.taken == 0
    assert agent.under_way == {}
    assert (agent.in_flight, agent.waiting) == (0, 0)
    running = agent.behaviour.running
    assert running is not None
    assert running.in_flight == 0  # the SDK's record of what runs: nothing left in it
    after = await asyncio.gather(*(agent.run(c) for c in commands(16)))
    assert {r.status for r in after} == {"ok"}


async def test_after_a_stop_what_waits_never_starts_and_what_runs_finishes() -> None:
    agent, sleepy = await agent_of(allocation=2)
    handlers = [asyncio.create_task(agent.run(c)) for c in commands(20)]
    await asyncio.sleep(0)  # two running, eighteen waiting for a slot
    agent.stop_admitting()
    outcomes = await asyncio.gather(*handlers, return_exceptions=True)

    finished = [o for o in outcomes if not isinstance(o, BaseException)]
    returned = [o for o in outcomes if isinstance(o, NotStarted)]
    assert len(finished) == sleepy.started == 2
    assert len(returned) == 18
    assert agent.slots.taken == 0
