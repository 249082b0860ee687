"""Agent types that clash with types already known to the system, for the test of a host
refused at registration: a `tally` whose `add` takes other input than the test package's
(tests.support.host_agents), and a `worker` that takes a built-in type's name."""

from __future__ import annotations

from pydantic import BaseModel

from vsm.agent import Agent, command


class Words(BaseModel):
    value: str


class Said(BaseModel):
    total: str


class Nothing(BaseModel):
    pass


class Tally(Agent[Nothing]):
    """A `tally` of its own, adding words instead of numbers."""

    name = "tally"

    @command
    async def add(self, words: Words) -> Said:
        """Add words."""
        return Said(total=words.value)


class Worker(Agent[Nothing]):
    """Not the built-in `worker`."""

    name = "worker"

    @command
    async def add(self, words: Words) -> Said:
        """Add words."""
        return Said(total=words.value)
