"""The work items S2 holds: each delivery stays unacknowledged until its command is settled.

Work comes off `vsm.system2.work` through the kit's direct consumers, held (FastStream would
ack on return), with a prefetch as large as the most items S2 may hold. A delivery is acked
only once its command has been answered (or timed out, or the item was dead-lettered), so
nothing acknowledged is lost if S2 dies; a redelivered item keeps its `command_id`, which the
agent recognises and answers from memory instead of working twice. With signing keys, a
delivery passes the kit's message guard before it is read, and its id is recorded against
replays when its item is settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.coordination import WorkItem
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.kit.bus import Bus
from vsm.kit.consumer import Delivery, DirectConsumers, Holder

log = structlog.get_logger("vsm.coordinator.holding")


@dataclass
class Held:
    envelope: Envelope[WorkItem]
    delivery: Delivery


class Holding:
    def __init__(self, bus: Bus, prefetch: int) -> None:
        self.bus = bus
        self.prefetch = prefetch
        self.queue_name = bus.namespace.name(topology.SYSTEM2_WORK.name)
        self.items: dict[str, Held] = {}
        self.consumers = DirectConsumers(bus, prefetch_count=prefetch, grace_s=0.0)

    async def consume(self, on_delivery: Holder) -> None:
        await self.consumers.consume_held(topology.SYSTEM2_WORK, on_delivery)

    async def stop_consuming(self) -> None:
        await self.consumers.cancel(topology.SYSTEM2_WORK)

    async def close(self) -> None:
        """Close the channel: what is still held goes back to the queue for the next S2."""
        await self.consumers.stop()

    async def keep(self, held: Held) -> bool:
        """Keep `held`; False when its command id is already held (a redelivery or a
        duplicate): the newest delivery then stands for it and the older one is acked."""
        command_id = held.envelope.data.command_id
        older = self.items.get(command_id)
        self.items[command_id] = held
        if older is not None:
            await older.delivery.ack()
        return older is None

    async def settle(
        self,
        command_id: str,
        answer: Envelope[Any] | None = None,
        bad: Unprocessable | None = None,
    ) -> None:
        """The item is done: forward the answer to its own `reply_to` (or dead-letter it)."""
        held = self.items.pop(command_id, None)
        if held is None:
            return
        delivery = held.delivery
        if bad is not None:
            await delivery.dead_letter(bad)
            return
        try:
            if answer is not None:
                await delivery.reply(answer)
        except Exception as error:
            log.warning("settle_failed", command_id=command_id, error=repr(error))
            await delivery.requeue()
            return
        await delivery.ack()

    async def requeue(self, command_id: str) -> None:
        held = self.items.pop(command_id, None)
        if held is not None:
            await held.delivery.requeue()
