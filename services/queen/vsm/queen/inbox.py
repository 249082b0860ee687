"""A child's inbox `vsm.meta.<vsm_id>`: declared, read and deleted with plain aio-pika.

Children come and go (and a name may come back), so their queues are not part of the
service's fixed topology: the broker client's declaration cache would remember a deleted
queue as still there. Every delivery passes the kit's message guard first
(`vsm.kit.consumer.admit`); bad input is dead-lettered with its reason (the kit's verdicts);
a failure of the handler is redelivered up to the queue's delivery limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError

from vsm.contract.errors import Unprocessable
from vsm.contract.recursion import PolicyDirective, meta_queue
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.consumer import Admission, admit
from vsm.kit.deadletter import verdict

log = structlog.get_logger("vsm.queen.inbox")
Directive = Callable[[Any], Awaitable[None]]


class Inbox:
    def __init__(self, bus: Bus, vsm_id: str, on_directive: Directive) -> None:
        self.bus = bus
        self.queue = meta_queue(vsm_id)
        self.name = bus.namespace.name(self.queue.name)
        self.on_directive = on_directive
        self.channel: AbstractChannel | None = None

    async def open(self) -> None:
        connection = await self.bus.broker.connect()
        self.channel = await connection.channel()
        ns = self.bus.namespace.name
        arguments = dict(self.bus.queue(self.queue).arguments or {})
        await self.bus.declare_dead_letters(
            self.queue.dead_letter_queue, self.queue.dead_letter_key
        )
        queue = await self.channel.declare_queue(self.name, durable=True, arguments=arguments)
        for binding in self.queue.bindings:
            await queue.bind(ns(binding.exchange.name), routing_key=binding.routing_key)
        await queue.consume(self._take)

    async def _take(self, message: AbstractIncomingMessage) -> None:
        admission = await admit(self.bus, message, self.name)
        if not isinstance(admission, Admission):  # refused and parked, before any reading
            return
        handled = False
        try:
            envelope = AnyEnvelope.validate_json(message.body)
            if not isinstance(envelope.data, PolicyDirective):
                raise Unprocessable("unexpected_type", f"{envelope.type} is not a directive")
            await self.on_directive(envelope)
            handled = True
        except (Unprocessable, ValidationError) as error:
            bad = verdict(error, message.body) or Unprocessable("invalid_schema", str(error))
            await self.bus.dead_letter(message, self.name, bad)
            await message.ack()
        except Exception as error:
            log.error("directive_failed", queue=self.name, error=repr(error))
            await message.nack(requeue=True)
        else:
            await message.ack()
        finally:
            admission.settle(handled=handled)

    async def close(self, delete: bool) -> None:
        """Stop reading; with `delete`, remove the inbox and its DLQ (missing ones are fine)."""
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await self.channel.close()
        if not delete:
            return
        connection = await self.bus.broker.connect()
        for name in (self.name, self.bus.namespace.name(self.queue.dead_letter_queue)):
            try:  # one channel per delete: a failed delete closes its channel
                channel = await connection.channel()
                async with channel:
                    await channel.queue_delete(name)
            except Exception as error:
                log.warning("inbox_not_deleted", queue=name, error=repr(error))
