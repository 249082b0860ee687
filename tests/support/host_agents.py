"""Agent types of a package of the user's own, written on the SDK alone, for the tests of
agent hosts (`vsm-agent run tests.support.host_agents`, or one type: `...host_agents:Tally`).

`tally` is the type the tests govern; `beacon` is offered by a host of its own, which a
test stops to see a type left without any host."""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel, Field

from vsm.agent import Agent, Context, Refused, command


class TallyConfig(BaseModel):
    start: int = Field(default=0, ge=0)


class Amount(BaseModel):
    value: int = Field(ge=0, le=1_000_000)


class Total(BaseModel):
    total: int
    host: str = ""


class Pause(BaseModel):
    seconds: float = Field(ge=0, le=60)


class Nothing(BaseModel):
    pass


class Tally(Agent[TallyConfig]):
    """Keeps a running total; fails, misbehaves or takes its time when asked."""

    name = "tally"
    host = ""
    """Which host process runs it (set by the tests' host launcher through the environment)."""

    async def start(self) -> None:
        self.total = self.config.start
        self.host = os.environ.get("INSTANCE_ID", "")

    @command
    async def add(self, amount: Amount) -> Total:
        """Add to the total."""
        self.total += amount.value
        return Total(total=self.total, host=self.host)

    @command
    async def fail(self, nothing: Nothing) -> Total:
        """Raise an error inside the agent (its message must not reach the caller)."""
        raise RuntimeError("password=hunter2 leaked?")

    @command
    async def refuse(self, nothing: Nothing) -> Total:
        """Refuse with a typed code."""
        raise Refused("not_today", "the tally refuses", {"why": "asked to"})

    @command
    async def wrong(self, nothing: Nothing) -> Total:
        """Answer something that does not fit the output model."""
        return {"total": "many"}  # type: ignore[return-value]

    @command
    async def wait(self, pause: Pause, ctx: Context) -> Total:
        """Take `seconds`, checking for cancellation."""
        deadline = asyncio.get_running_loop().time() + pause.seconds
        while asyncio.get_running_loop().time() < deadline:
            ctx.check()
            await asyncio.sleep(0.05)
        self.total += 1
        return Total(total=self.total, host=self.host)

    def audit(self) -> dict[str, int]:
        return {"total": self.total}


class Beacon(Agent[Nothing]):
    """Answers where it runs: a type offered by one host only, stopped by a test."""

    name = "beacon"

    @command
    async def where(self, nothing: Nothing) -> Total:
        """The host running it."""
        return Total(total=0, host=os.environ.get("INSTANCE_ID", ""))
