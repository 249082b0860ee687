"""What S1 says on the broker: documented publishers and the rules for each.

- Registry events (`AgentSpawned`, `AgentsSpawned`, `AgentTerminated`, `AgentsTerminated`,
  `AgentCrashed`, `AgentRehomed`) on `vsm.s1.registry`, key `agent.<event>.<agent_type>`:
  mandatory and confirmed, the log every replica follows.
- Each command's `CommandResult` on the agent's results exchange (bound into
  `vsm.s1.results`), key `<agent_type>.<agent_id>.<command>`: not mandatory, whether anyone
  observes the aggregate is up to the observers.
- An agent's feelings as `AlgedonicSignal` on `vsm.algedonic`: mandatory; an unroutable one
  is logged loudly, never raised into the agent.
- Each agent's `UnitPerformance` on `vsm.control`, key `performance.<agent_id>`: not
  mandatory, S3 binds to it when it wants it.
- Answers to the requests for an agent (`CommandResult`, `AuditReport`) and the dead
  letters of its partition (e.g. for a terminated agent), each with its reason.

An llm_worker's `LlmUsage` (on `vsm.control`) is the kit's metered client's to publish
(`vsm.kit.llm`), not this module's.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.message import Message
from vsm.contract.operations import (
    REGISTRY_EVENTS,
    AgentInfo,
    CommandResult,
    RegistryEvent,
    command_key,
    registry_key,
    results_exchange,
)
from vsm.contract.performance import UnitPerformance, performance_key
from vsm.contract.topology import Queue
from vsm.kit.bus import Bus

log = structlog.get_logger("vsm.operations.outlets")


class Outlets:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        bus.interface.sends(
            results_exchange("{agent_id}"),
            CommandResult,
            routing_key=command_key("{agent_type}", "{agent_id}", "{command}"),
            into=topology.Binding(topology.S1_RESULTS, "#"),
        )
        bus.interface.sends(topology.ALGEDONIC, AlgedonicSignal)
        bus.interface.sends(
            topology.CONTROL, UnitPerformance, routing_key=performance_key("{agent_id}")
        )
        bus.interface.sends(
            topology.S1_REGISTRY,
            *REGISTRY_EVENTS,
            routing_key=registry_key("{event}", "{agent_type}"),  # type: ignore[arg-type]
        )

    async def logged(
        self,
        event: RegistryEvent,
        event_type: str,
        agent_type: str,
        cause: Envelope[Any] | None = None,
    ) -> Envelope[Any]:
        """A registry event, confirmed by the broker before S1 applies it (caused by the
        request that made it, when one did)."""
        return await self.bus.publish(
            topology.S1_REGISTRY,
            event,
            routing_key=registry_key(event_type, agent_type),  # type: ignore[arg-type]
            cause=cause,
        )

    async def result(self, info: AgentInfo, result: CommandResult, cause: Envelope[Any]) -> None:
        """A command's result, for the observers of `vsm.s1.results` (none is no failure)."""
        await self.bus.publish(
            results_exchange(info.agent_id),
            result,
            routing_key=command_key(info.agent_type, info.agent_id, result.command_type),
            cause=cause,
            vsm_id=info.vsm_id,
            mandatory=False,
        )

    async def felt(self, info: AgentInfo, signal: AlgedonicSignal) -> None:
        """An agent's feeling; nobody bound to the algedonic exchange is said loudly."""
        try:
            await self.bus.publish(
                topology.ALGEDONIC, signal, subject=info.agent_id, vsm_id=info.vsm_id
            )
        except Exception as error:
            log.error("algedonic_unroutable", agent_id=info.agent_id, error=repr(error))

    async def performance(self, info: AgentInfo, report: UnitPerformance) -> None:
        """An agent's performance report; raises when it failed (tried again next interval)."""
        await self.bus.publish(
            topology.CONTROL,
            report,
            routing_key=performance_key(info.agent_id),
            vsm_id=info.vsm_id,
            mandatory=False,
        )

    async def answer(
        self,
        reply_to: str | None,
        correlation_id: str | None,
        body: Message,
        cause: Envelope[Any],
    ) -> None:
        """The answer to a request for an agent, sent from inside its handling."""
        await self.bus.answer(reply_to, correlation_id, body, cause)

    async def dead_letter_queued(self, queue: Queue, bad: Unprocessable) -> None:
        """Dead-letter what is still in `queue` with the reason, answering its requesters."""
        name, key = map(self.bus.namespace.name, (queue.name, queue.dead_letter_key))
        with contextlib.suppress(Exception):
            async for message in self.bus.declarations.take(queue.name):
                await self.bus.dead_letter(message, name, bad, key)
                await message.ack()
