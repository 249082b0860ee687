"""An event log (a RabbitMQ stream) read from its first entry, in order, and then followed.

Streams are read, not consumed: every reader gets every entry. Each entry's signature is
checked first (`vsm.kit.eventlog`); the reader is given the entries that verify, decoded, one
at a time in stream order. An entry that does not verify is `refused` (the reader says
whether reading stops there); one that cannot be decoded is `unreadable` (a stream cannot
dead-letter: it stays in the log for inspection), and reading goes on.

The consumer is on a robust channel: after a lost connection it resumes from the first
entry again, which readers make harmless (entries apply once, by id); an ack for a delivery
of the lost channel cannot be sent and is not needed (a stream keeps its entries).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.kit.bus import AnyEnvelope, Bus
from vsm.kit.eventlog import LogReading, RefusedEntry, offset_of
from vsm.kit.rpc import CONNECTION_LOST

__all__ = ["PREFETCH", "Entry", "LogReader"]

log = structlog.get_logger("vsm.streams")
PREFETCH = 500


@dataclass(frozen=True)
class Entry:
    """One entry of a log, verified and decoded."""

    envelope: Envelope[Message]
    _message: AbstractIncomingMessage
    _reading: LogReading

    @property
    def offset(self) -> int | None:
        """Where the entry is in its log."""
        return offset_of(self._message)

    def opened(self, live_keys: list[str]) -> None:
        """This entry is the log's marker naming the keys live when it was written
        (`LogReading.opened`): older keys it leaves out sign no later entry."""
        self._reading.opened(self._message, live_keys)

    def retired(self, key_ids: list[str]) -> None:
        """This entry is a snapshot naming the keys its writer kept for the logs alone
        (`LogReading.retire`): none of them signs a later entry."""
        self._reading.retire(self._message, key_ids)


def _skip(_: RefusedEntry) -> bool:
    return False


class LogReader:
    """Reads `stream` from `start` (its first entry unless told: an offset, `first` or
    `last`) with `on_entry`, for as long as it runs. With `strict`, an entry that cannot be
    decoded is refused like one that does not verify (for a log whose state it would
    falsify), rather than passed over."""

    def __init__(
        self,
        bus: Bus,
        stream: topology.Queue,
        on_entry: Callable[[Entry], Awaitable[None]],
        *,
        unreadable: Callable[[ValueError], None],
        refused: Callable[[RefusedEntry], bool] = _skip,
        prefetch: int = PREFETCH,
        start: int | str = "first",
        strict: bool = False,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.on_entry = on_entry
        self.unreadable = unreadable
        self.refused = refused
        """Told of an entry that does not verify (logged already): True stops the reading."""
        self.prefetch = prefetch
        self.start_at = start
        self.strict = strict
        self.reading = bus.log_reading(stream)
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._worker: asyncio.Task[None] | None = None
        self._consumer: tuple[AbstractQueue, str] | None = None

    async def start(self) -> None:
        """Declare the stream and start reading it (from its first entry unless told)."""
        await self.bus.declare(self.stream)
        self._channel = await (await self.bus.connection()).channel()
        await self._channel.set_qos(prefetch_count=self.prefetch)
        name = self.bus.namespace.name(self.stream.name)
        # Declared (passively) rather than merely named, so a reconnection restores the consumer.
        source = await self._channel.declare_queue(name, passive=True)
        self._worker = asyncio.create_task(self._work(), name=f"read {self.stream.name}")
        tag = await source.consume(self._inbox.put, arguments={"x-stream-offset": self.start_at})
        self._consumer = (source, tag)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                if not self.reading.check(message):  # disowned by the operator
                    await _ack(message)
                    continue
                envelope = AnyEnvelope.validate_json(message.body)
            except RefusedEntry as refused:
                refused.offset = offset_of(message)
                if self.refused(refused):
                    return  # nothing after it is read
            except ValueError as error:  # ValidationError is one
                if not self.strict:
                    self.unreadable(error)
                else:
                    final = self.reading.unreadable(message, error)
                    final.offset = offset_of(message)
                    if self.refused(final):
                        return
            else:
                try:
                    await self.on_entry(Entry(envelope, message, self.reading))
                except Exception as error:
                    log.error("log_entry_failed", stream=self.stream.name, error=repr(error))
            await _ack(message)

    async def stop(self) -> None:
        """Stop reading: the consumer is cancelled, then its channel closed."""
        if self._consumer is not None:
            source, tag = self._consumer
            with contextlib.suppress(Exception):
                await source.cancel(tag)
            self._consumer = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()


async def _ack(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(*CONNECTION_LOST):  # a delivery of a channel since lost
        await message.ack()
