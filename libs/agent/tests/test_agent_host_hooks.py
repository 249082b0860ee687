"""What passes between a host and an agent outside commands: `spawn(prepare=...)` before
`start`, and feelings the agent raises on its own (`Agent.pain`, `spawn(on_intent=...)`)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from vsm.agent import (
    Agent,
    AgentIdentity,
    Feeling,
    Intent,
    Invocation,
    NoConfig,
    Refused,
    command,
    spawn,
)


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


class Watcher(Agent[NoConfig]):
    """Watches something in the background and says how it goes."""

    name = "watcher"

    async def start(self) -> None:
        self.pain("upstream-down", 0.7, episode="watch:1", depth=12)

    @command
    async def recovered(self, data: Nothing) -> None:
        """Say it is fine again."""
        self.pleasure("upstream_back")


async def test_a_feeling_outside_any_command_reaches_the_host_from_start_on() -> None:
    heard: list[Intent] = []

    running = await spawn(
        Watcher, {}, AgentIdentity("watcher-1", "watcher"), on_intent=heard.append
    )
    await running.run(Invocation("recovered"))

    pain, pleasure = heard
    assert isinstance(pain, Feeling)
    assert (pain.kind, pain.reason, pain.intensity) == ("pain", "upstream-down", 0.7)
    assert (pain.command_id, pain.episode, pain.context) == (None, "watch:1", {"depth": 12})
    assert pain.signal("operations/watcher-1").episode == "watch:1"
    assert "command_id" not in pain.signal("operations/watcher-1").context
    assert isinstance(pleasure, Feeling)
    assert (pleasure.kind, pleasure.episode) == ("pleasure", None)


async def test_a_feeling_nobody_hears_is_dropped_and_a_bad_one_refused() -> None:
    running = await spawn(Watcher, {}, AgentIdentity("watcher-1", "watcher"))

    running.agent.pleasure("fine")

    with pytest.raises(ValueError, match="reason"):
        running.agent.pain("not a code")
    with pytest.raises(ValueError, match="intensity"):
        running.agent.pain("too_much", 2.0)
