"""Dead-letter queues as an operator sees them: how many, the latest with their reason, and
one taken out again (requeued to where it was going, or discarded).

AMQP cannot peek: a queue is read with `basic.get` and what is not taken goes back with
`basic.nack(requeue=True)`, in order, before anything newer. A scan reads at most
`scan_limit` messages from the head; the latest shown are the latest of those. A requeued
message is published again (confirmed, mandatory) to its original exchange and routing key,
without its dead-letter and signature headers, so the kit's producer signs it anew, and only
then acked. A message refused for its signature or freshness is never requeued: signing it
again would vouch for what nobody vouched for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import ChannelClosed

from vsm.kit.bus import Bus
from vsm.kit.deadletter import DETAIL_HEADER, REASON_HEADER
from vsm.kit.signing import KEY_ID_HEADER, SIGNATURE_HEADER

__all__ = [
    "DEAD_LETTERED_BY",
    "DROPPED_HEADERS",
    "ORIGINAL_EXCHANGE",
    "ORIGINAL_ROUTING_KEY",
    "PREVIEW_CHARS",
    "SECURITY_REASONS",
    "DeadLetter",
    "DeadLetters",
    "NoSuchDeadLetter",
    "NotRequeueable",
    "describe",
    "requeueable",
]

ORIGINAL_EXCHANGE = "x-vsm-original-exchange"
ORIGINAL_ROUTING_KEY = "x-vsm-original-routing-key"
DEAD_LETTERED_BY = "x-vsm-dead-lettered-by"
SECURITY_REASONS = frozenset({"bad_signature", "stale", "from_future", "replayed"})
"""Refusals of the message guard: such a message is never signed again by a requeue."""
DROPPED_HEADERS = frozenset(
    {
        REASON_HEADER,
        DETAIL_HEADER,
        ORIGINAL_EXCHANGE,
        ORIGINAL_ROUTING_KEY,
        DEAD_LETTERED_BY,
        SIGNATURE_HEADER,
        KEY_ID_HEADER,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)
PREVIEW_CHARS = 2000


class NoSuchDeadLetter(LookupError):
    """The queue does not exist, or holds no message with that id (within the scan)."""


class NotRequeueable(Exception):
    """The dead letter cannot go back: its reason forbids it, or its destination is unknown."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    reason: str
    detail: str
    exchange: str
    """Where it was going: the canonical exchange name ("" for the default exchange)."""
    routing_key: str
    dead_lettered_by: str | None
    message_type: str | None
    size: int
    preview: str


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def describe(message: AbstractIncomingMessage, canonical: Any) -> DeadLetter:
    """What a dead letter says about itself: the kit's headers, else the broker's `x-death`."""
    headers: Mapping[str, Any] = message.headers or {}
    death = _first_death(headers)
    reason = _text(headers.get(REASON_HEADER)) or f"broker:{_text(death.get('reason'))}"
    exchange = _text(headers.get(ORIGINAL_EXCHANGE, death.get("exchange")))
    keys = death.get("routing-keys")
    death_key = _text(keys[0]) if isinstance(keys, list) and keys else ""
    routing_key = _text(headers.get(ORIGINAL_ROUTING_KEY, death_key))
    by = headers.get(DEAD_LETTERED_BY)
    return DeadLetter(
        message_id=message.message_id,
        reason=reason,
        detail=_text(headers.get(DETAIL_HEADER))[:1024],
        exchange=canonical(exchange),
        routing_key=routing_key,
        dead_lettered_by=_text(by) if by is not None else None,
        message_type=message.type,
        size=len(message.body),
        preview=message.body[:PREVIEW_CHARS].decode(errors="replace"),
    )


def requeueable(letter: DeadLetter) -> bool:
    """Whether `requeue` would take it: a known destination, and no security refusal."""
    return letter.reason not in SECURITY_REASONS and bool(letter.exchange or letter.routing_key)


class DeadLetters:
    """Read and act on dead-letter queues by their canonical names, through the bus."""

    def __init__(self, bus: Bus, scan_limit: int = 1000) -> None:
        self.bus = bus
        self.scan_limit = scan_limit
        self._locks: dict[str, asyncio.Lock] = {}

    async def _channel(self) -> AbstractChannel:
        connection = await self.bus.broker.connect()
        return await connection.channel(publisher_confirms=False)

    async def count(self, queue: str) -> int | None:
        """Messages ready on `queue`; None when it does not exist."""
        return (await self.counts([queue]))[queue]

    async def counts(self, queues: list[str]) -> dict[str, int | None]:
        """Messages ready on each queue (None for one that does not exist), on one channel
        (a missing queue closes it: the next gets a new one)."""
        found: dict[str, int | None] = {}
        channel = await self._channel()
        try:
            for queue in queues:
                if channel.is_closed:
                    channel = await self._channel()
                try:
                    declared = await channel.declare_queue(
                        self.bus.namespace.name(queue), passive=True
                    )
                except ChannelClosed:
                    found[queue] = None
                    continue
                found[queue] = int(declared.declaration_result.message_count or 0)
        finally:
            if not channel.is_closed:
                await channel.close()
        return found

    async def peek(self, queue: str, limit: int) -> list[DeadLetter]:
        """The latest `limit` dead letters (newest first) of the first `scan_limit`."""
        seen = await self._scan(queue, None, None)
        return seen[-limit:][::-1] if limit > 0 else []

    async def requeue(self, queue: str, message_id: str) -> DeadLetter:
        """Publish the dead letter `message_id` again where it was going, then drop it here."""
        return (await self._scan(queue, message_id, self._republish))[0]

    async def discard(self, queue: str, message_id: str) -> DeadLetter:
        """Drop the dead letter `message_id` for good."""
        return (await self._scan(queue, message_id, None))[0]

    async def _republish(self, message: AbstractIncomingMessage, letter: DeadLetter) -> None:
        if not requeueable(letter):
            raise NotRequeueable(
                f"dead-lettered as {letter.reason} (a security refusal is never signed "
                "again), or its original exchange and routing key are unknown"
            )
        headers = {k: v for k, v in (message.headers or {}).items() if k not in DROPPED_HEADERS}
        exchange = self.bus.namespace.name(letter.exchange) if letter.exchange else ""
        await self.bus.producer.publish(
            exchange,
            letter.routing_key,
            message.body,
            mandatory=True,
            headers=headers,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            content_type=message.content_type,
        )

    async def _scan(self, queue: str, message_id: str | None, act: Any) -> list[DeadLetter]:
        """Read the queue's head; with a `message_id`, take that one (after `act`, if any) and
        return only it; return the rest to the queue in order."""
        lock = self._locks.setdefault(queue, asyncio.Lock())
        async with lock:
            channel = await self._channel()
            try:
                return await self._read(channel, queue, message_id, act)
            except ChannelClosed as error:
                raise NoSuchDeadLetter(f"no queue {queue!r}") from error
            finally:
                if not channel.is_closed:
                    await channel.close()  # whatever is still unacked goes back

    async def _read(
        self, channel: AbstractChannel, queue: str, message_id: str | None, act: Any
    ) -> list[DeadLetter]:
        source = await channel.declare_queue(self.bus.namespace.name(queue), passive=True)
        held: list[AbstractIncomingMessage] = []
        seen: list[DeadLetter] = []
        try:
            while len(held) < self.scan_limit:
                message = await source.get(no_ack=False, fail=False)
                if message is None:
                    break
                letter = describe(message, self.bus.namespace.canonical)
                if message_id is not None and message.message_id == message_id:
                    if act is not None:
                        await act(message, letter)
                    await message.ack()
                    return [letter]
                held.append(message)
                seen.append(letter)
        finally:
            if held:
                await held[-1].nack(multiple=True, requeue=True)
        if message_id is not None:
            raise NoSuchDeadLetter(f"no dead letter {message_id!r} on {queue!r}")
        return seen
