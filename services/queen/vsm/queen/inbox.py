"""A child's inbox `vsm.meta.<vsm_id>`: declared, read and deleted while S5 runs.

Children come and go (and a name may come back), so their queues are not part of the
service's fixed topology: they are declared and deleted through the kit's run-time
declarations and read by the kit's direct consumers, so every delivery passes the kit's
message guard first; bad input is dead-lettered with its reason; a failure of the handler
is redelivered up to the queue's delivery limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.message import Message
from vsm.contract.recursion import PolicyDirective, meta_queue
from vsm.kit.bus import Bus
from vsm.kit.consumer import Delivery, DirectConsumers

log = structlog.get_logger("vsm.queen.inbox")
Directive = Callable[[Any], Awaitable[None]]
PREFETCH = 10


class Inbox:
    def __init__(self, bus: Bus, vsm_id: str, on_directive: Directive) -> None:
        self.bus = bus
        self.queue = meta_queue(vsm_id)
        self.on_directive = on_directive
        self.consumers = DirectConsumers(bus, prefetch_count=PREFETCH, grace_s=0.0)

    async def open(self) -> None:
        declarations = self.bus.declarations
        await declarations.dead_letters(self.queue.dead_letter_queue, self.queue.dead_letter_key)
        await declarations.queue(self.queue)
        await self.consumers.consume(self.queue, self._take)

    async def _take(self, envelope: Envelope[Message], _: Delivery) -> None:
        if not isinstance(envelope.data, PolicyDirective):
            raise Unprocessable("unexpected_type", f"{envelope.type} is not a directive")
        await self.on_directive(envelope)

    async def close(self, delete: bool) -> None:
        """Stop reading; with `delete`, remove the inbox and its DLQ (missing ones are fine)."""
        await self.consumers.stop()
        if not delete:
            return
        for name in (self.queue.name, self.queue.dead_letter_queue):
            try:
                await self.bus.declarations.delete(name)
            except Exception as error:
                log.warning("inbox_not_deleted", queue=name, error=repr(error))
