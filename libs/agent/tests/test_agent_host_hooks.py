"""What a host gives an agent outside its commands: `spawn(prepare=...)` before `start`."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from vsm.agent import Agent, AgentIdentity, NoConfig, Refused, command, spawn


class Nothing(BaseModel):
    pass


class Lent(BaseModel):
    client: str | None


class Borrower(Agent[NoConfig]):
    """Uses what its host lends it."""

    name = "borrower"
    client: str | None = None
    seen_at_start: str | None = None

    async def start(self) -> None:
        self.seen_at_start = self.client

    @command
    async def show(self, data: Nothing) -> Lent:
        """What it was lent."""
        return Lent(client=self.client)


async def test_prepare_sees_the_agent_before_its_start_hook() -> None:
    def lend(agent: Agent[NoConfig]) -> None:
        assert isinstance(agent, Borrower)
        agent.client = "the host's client"

    running = await spawn(Borrower, {}, AgentIdentity("borrower-1", "borrower"), prepare=lend)

    assert isinstance(running.agent, Borrower)
    assert running.agent.seen_at_start == "the host's client"


async def test_a_failing_prepare_is_a_start_failure() -> None:
    def broken(agent: Agent[NoConfig]) -> None:
        raise RuntimeError("no client")

    with pytest.raises(Refused) as refused:
        await spawn(Borrower, {}, AgentIdentity("borrower-1", "borrower"), prepare=broken)

    assert refused.value.code == "agent_start_failed"
