"""The work items S2 holds: each delivery stays unacknowledged until its command is settled.

Work comes off `vsm.system2.work` through a plain aio-pika consumer (FastStream would ack on
return), with a prefetch as large as the most items S2 may hold. A delivery is acked only
once its command has been answered (or timed out, or the item was dead-lettered), so nothing
acknowledged is lost if S2 dies; a redelivered item keeps its `command_id`, which the agent
recognises and answers from memory instead of working twice. With signing keys, a delivery
passes the kit's message guard (`vsm.kit.consumer.admit`) before it is read, and its id is
recorded against replays when its item is settled.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from vsm.contract import topology
from vsm.contract.coordination import WorkItem
from vsm.contract.envelope import CONTENT_TYPE, Envelope
from vsm.contract.errors import Unprocessable
from vsm.kit.bus import Bus, amqp_headers
from vsm.kit.consumer import Admission

log = structlog.get_logger("vsm.coordinator.holding")


@dataclass
class Held:
    envelope: Envelope[WorkItem]
    message: AbstractIncomingMessage
    admission: Admission


class Holding:
    def __init__(self, bus: Bus, prefetch: int) -> None:
        self.bus = bus
        self.prefetch = prefetch
        self.queue_name = bus.namespace.name(topology.SYSTEM2_WORK.name)
        self.items: dict[str, Held] = {}
        self._channel: AbstractChannel | None = None
        self._consumer: tuple[AbstractQueue, str] | None = None

    async def consume(self, on_delivery: Any) -> None:
        connection = await self.bus.broker.connect()
        self._channel = await connection.channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        # declared (passively) through the robust channel, so its consumer is restored when
        # the connection comes back after a broker restart
        queue = await self._channel.declare_queue(self.queue_name, passive=True)
        self._consumer = (queue, await queue.consume(on_delivery, no_ack=False))

    async def stop_consuming(self) -> None:
        if self._consumer is not None:
            queue, tag = self._consumer
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            self._consumer = None

    async def close(self) -> None:
        """Close the channel: what is still held goes back to the queue for the next S2."""
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    async def hold(self, held: Held) -> bool:
        """Keep `held`; False when its command id is already held (a redelivery or a
        duplicate): the newest delivery then stands for it and the older one is acked."""
        command_id = held.envelope.data.command_id
        older = self.items.get(command_id)
        self.items[command_id] = held
        if older is not None:
            older.admission.settle(handled=True)
            with contextlib.suppress(Exception):  # its channel may be gone: nothing to ack
                await older.message.ack()
        return older is None

    async def reject(
        self, message: AbstractIncomingMessage, bad: Unprocessable, admission: Admission
    ) -> None:
        """Dead-letter with the reason (answering a waiting requester), then ack."""
        admission.settle(handled=False)
        try:
            await self.bus.dead_letter(message, self.queue_name, bad)
            await message.ack()
        except Exception as error:  # the broker is away: the delivery comes back later
            log.warning("dead_letter_failed", reason=bad.reason, error=repr(error))
            await _nack(message)

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
        message = held.message
        if bad is not None:
            await self.reject(message, bad, held.admission)
            return
        held.admission.settle(handled=True)
        try:
            if answer is not None and message.reply_to:
                await self.bus.broker.publish(
                    answer.model_dump_json(serialize_as_any=True).encode(),
                    routing_key=message.reply_to,
                    correlation_id=message.correlation_id,
                    message_id=answer.id,
                    message_type=answer.type,
                    content_type=CONTENT_TYPE,
                    headers=amqp_headers(answer),
                    mandatory=False,  # a requester that gave up is no failure
                )
            await message.ack()
        except Exception as error:
            log.warning("settle_failed", command_id=command_id, error=repr(error))
            await _nack(message)

    async def requeue(self, command_id: str) -> None:
        held = self.items.pop(command_id, None)
        if held is not None:
            held.admission.settle(handled=False)
            await _nack(held.message)


async def _nack(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(Exception):
        await message.nack(requeue=True)
