"""A lost broker connection cancels every command handler at once; the agent must come out
of it whole: no concurrency slot leaked, no command id left "under way", and after a stop
the commands still waiting never start (they stay with the broker for the next consumer).

In-process on purpose: the cancellation storm is what aiormq does to its consumer tasks when
the connection drops, and its outcome (the agent's slots) is not visible from outside.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from vsm.contract.operations import AgentCommand
from vsm.operations.agent import Agent, NotStarted
from vsm.operations.agents.base import AgentConfig, Command, Passive
from vsm.operations.algedonics import Feeling
from vsm.operations.registry import new_agent


class Sleepy(Passive):
    def __init__(self) -> None:
        self.started = 0

    async def work(self, request: Anything) -> dict[str, Any]:
        self.started += 1
        await asyncio.sleep(random.uniform(0, 0.01))
        return {"done": request.model_dump()}


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


def agent_of(allocation: int) -> tuple[Agent, Sleepy]:
    async def feel(_: Feeling) -> None:
        return None

    async def crash(_: BaseException) -> None:
        return None

    info = new_agent("worker", {"allocation": allocation}, datetime.now(UTC))
    behaviour = Sleepy()
    agent = Agent(
        info,
        AgentConfig(allocation=allocation),
        behaviour,
        commands={"process_data": Command("sleeps", Anything, Sleepy.work)},
        window_s=10,
        feel=feel,
        crash=crash,
    )
    return agent, behaviour


def commands(count: int) -> list[AgentCommand]:
    return [AgentCommand(command_type="process_data", data={"n": i}) for i in range(count)]


@pytest.mark.parametrize("seed", range(20))
async def test_cancelling_every_handler_at_once_leaks_no_slot(seed: int) -> None:
    random.seed(seed)
    agent, _ = agent_of(allocation=4)
    handlers = [asyncio.create_task(agent.run(c)) for c in commands(64)]
    await asyncio.sleep(random.uniform(0, 0.03))
    for handler in handlers:
        handler.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await asyncio.sleep(0.05)  # slots given back under a shield are given back by now

    assert agent.slots.taken == 0
    assert agent.under_way == {}
    assert (agent.in_flight, agent.waiting) == (0, 0)
    after = await asyncio.gather(*(agent.run(c) for c in commands(16)))
    assert {r.status for r in after} == {"ok"}


async def test_after_a_stop_what_waits_never_starts_and_what_runs_finishes() -> None:
    agent, behaviour = agent_of(allocation=2)
    handlers = [asyncio.create_task(agent.run(c)) for c in commands(20)]
    await asyncio.sleep(0)  # two running, eighteen waiting for a slot
    agent.stop_admitting()
    outcomes = await asyncio.gather(*handlers, return_exceptions=True)

    finished = [o for o in outcomes if not isinstance(o, BaseException)]
    returned = [o for o in outcomes if isinstance(o, NotStarted)]
    assert len(finished) == behaviour.started == 2
    assert len(returned) == 18
    assert agent.slots.taken == 0
