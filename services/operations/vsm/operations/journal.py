"""The registry log: events published on `vsm.s1.registry`, replayed from the stream.

A replica knows its replay has caught up when it reads back a mark it wrote itself after
subscribing: everything before the mark is the registry as it stood. Events are applied one
at a time, in stream order. A stream cannot dead-letter, so an unreadable entry is logged,
counted and skipped (it stays in the log for inspection). An entry whose signature does not
verify (`vsm.kit.eventlog`) stops the start-up, since a registry rebuilt without it would be
wrong; one that arrives once caught up is logged as a security event and not applied.

The consumer is on a robust channel: after a lost connection it resumes from the first entry
again, which is harmless (events apply once, by id); an ack for a delivery of the lost
channel cannot be sent and is not needed (a stream keeps its entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from vsm.contract.envelope import CONTENT_TYPE
from vsm.contract.message import Message
from vsm.contract.operations import (
    REGISTRY_LOG,
    AgentCrashed,
    AgentSpawned,
    AgentTerminated,
    RegistryMark,
)
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.eventlog import RefusedEntry
from vsm.kit.rpc import CONNECTION_LOST

log = structlog.get_logger("vsm.operations.journal")

STREAM_PREFETCH = 500
Apply = Callable[[str, Message, bool], Awaitable[None]]


class RegistryJournal:
    def __init__(self, bus: Bus, instance: str, apply: Apply) -> None:
        self.bus = bus
        self.instance = instance
        self.apply = apply
        self.nonce = secrets.token_hex(8)
        self.caught_up = asyncio.Event()
        self.reading = bus.log_reading(REGISTRY_LOG)
        events = (AgentSpawned, AgentTerminated, AgentCrashed, RegistryMark)
        bus.interface.receives(REGISTRY_LOG, *events)
        bus.interface.sends_to_queue(REGISTRY_LOG, RegistryMark)
        self.refused: RefusedEntry | None = None
        """The entry that stopped the replay, if one did."""
        self.skipped = 0
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self, connection: AbstractRobustConnection, timeout_s: float) -> None:
        """Replay the whole log; return once caught up (or raise after `timeout_s`)."""
        await self.bus.declare(REGISTRY_LOG)
        self._channel = await connection.channel()
        await self._channel.set_qos(prefetch_count=STREAM_PREFETCH)
        name = self.bus.namespace.name(REGISTRY_LOG.name)
        # Declared (passively) rather than merely named, so a reconnection restores the consumer.
        stream = await self._channel.declare_queue(name, passive=True)
        self._worker = asyncio.create_task(self._work(), name="registry-replay")
        await stream.consume(self._inbox.put, arguments={"x-stream-offset": "first"})
        live = self.bus.live_key_ids()
        mark = self.bus.envelope(
            RegistryMark(instance=self.instance, nonce=self.nonce, live_keys=live)
        )
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                body := mark.model_dump_json().encode(),
                headers={**self.bus.signature_headers(body, "", name)},
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=mark.id,
                type=mark.type,
            ),
            routing_key=name,
        )
        async with asyncio.timeout(timeout_s):
            await self.caught_up.wait()
        if self.refused is not None:
            raise self.refused
        log.info("registry_replayed", skipped=self.skipped)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                if not self.reading.check(message):  # disowned by the operator
                    await self._ack(message)
                    continue
                envelope = AnyEnvelope.validate_json(message.body)
            except RefusedEntry as refused:
                if not self.caught_up.is_set():  # start-up stops here
                    self.refused = refused
                    self.caught_up.set()
                    return
            except ValueError as error:  # ValidationError is one
                self.skipped += 1
                log.error("registry_entry_unreadable", error=str(error)[:500])
            else:
                if isinstance(envelope.data, RegistryMark):  # the keys live from here on
                    self.reading.opened(message, envelope.data.live_keys)
                    if envelope.data.nonce == self.nonce:
                        self.caught_up.set()
                else:
                    try:
                        await self.apply(envelope.id, envelope.data, self.caught_up.is_set())
                    except Exception as error:
                        log.error("registry_apply_failed", error=repr(error), exc_info=error)
            await self._ack(message)

    @staticmethod
    async def _ack(message: AbstractIncomingMessage) -> None:
        with contextlib.suppress(*CONNECTION_LOST):  # a delivery of a channel since lost
            await message.ack()

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
