"""What a service declares on the broker while it runs, outside the fixed topology it
declares at start-up: queues that come and go (an agent's, a child's inbox), their bindings
and dead letters, exchanges joined to exchanges.

Declared on plain channels, not through the broker client's declaration cache (which would
remember a deleted queue as still there). Channels are kept open and reused, so that agents
spawned at once are declared in parallel (one channel's requests are answered one after
another) without opening a channel per agent; a channel closed by a refusal is dropped.
Queue names are canonical (the namespace is applied here); exchange names are the broker's,
so that two namespaces' exchanges can be joined.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from vsm.contract import topology
from vsm.kit.names import Namespace

__all__ = ["Declarations", "QueueMismatch"]


log = structlog.get_logger("vsm.declarations")


class QueueMismatch(Exception):
    """The queue exists already, declared with other arguments (e.g. by an earlier version)."""


class Declarations:
    def __init__(
        self,
        connection: Callable[[], Awaitable[AbstractRobustConnection]],
        namespace: Namespace,
        arguments: Callable[[topology.Queue], dict[str, Any]],
        dead_letter_cap: topology.DeadLetterCap,
    ) -> None:
        self._connection = connection
        self._name = namespace.name
        self._arguments = arguments
        self._dead_letter_cap = dead_letter_cap
        self._idle: list[AbstractChannel] = []

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[AbstractChannel]:
        while self._idle:
            channel = self._idle.pop()
            if not channel.is_closed:
                break
        else:
            channel = await (await self._connection()).channel(publisher_confirms=False)
        try:
            yield channel
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        if not channel.is_closed:
            self._idle.append(channel)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)

    # Queues -------------------------------------------------------------------------------
    async def queue(self, queue: topology.Queue) -> None:
        """Declare `queue` with its arguments and bind it (idempotent); `QueueMismatch` when
        it exists with other arguments."""
        try:
            async with self._channel() as channel:
                await channel.declare_queue(
                    self._name(queue.name), durable=True, arguments=self._arguments(queue)
                )
        except ChannelPreconditionFailed as error:
            raise QueueMismatch(f"{queue.name}: {error}") from error
        await self.bind(queue)

    async def stream(self, queue: topology.Queue) -> None:
        """Declare the stream `queue` with its arguments (its retention) and bind it
        (idempotent).

        A stream of that name declared with other arguments (an earlier version, declared
        without retention, or other `VSM_LOG_*` settings) fails the declaration
        (PRECONDITION_FAILED): it is kept as it is, with its entries, and a warning says how
        to give it the retention by a broker policy (README, "Logs and snapshots")."""
        wanted = self._arguments(queue)
        try:
            await self.queue(queue)
        except QueueMismatch:
            async with self._channel() as channel:
                await channel.declare_queue(self._name(queue.name), passive=True)
            log.warning(
                "stream_kept_as_declared",
                queue=queue.name,
                wanted=wanted,
                hint="give it this retention by a broker policy: README, 'Logs and snapshots'",
            )
            await self.bind(queue)

    async def bind(self, queue: topology.Queue) -> None:
        """Bind an existing `queue` as its bindings say (idempotent)."""
        async with self._channel() as channel:
            declared = await channel.get_queue(self._name(queue.name), ensure=False)
            for binding in queue.bindings:
                await declared.bind(self._name(binding.exchange.name), binding.routing_key)

    async def unbind(self, queue: topology.Queue) -> None:
        """Undo `queue`'s bindings: what was routed to it is then returned as unroutable."""
        async with self._channel() as channel:
            declared = await channel.get_queue(self._name(queue.name), ensure=False)
            for binding in queue.bindings:
                await declared.unbind(
                    self._name(binding.exchange.name), routing_key=binding.routing_key
                )

    async def dead_letters(self, name: str, routing_key: str) -> None:
        """A quorum queue `name` with the dead-letter cap (`topology.DeadLetterCap`), taking
        the dead letters routed by `routing_key` (both canonical) on the dead-letter exchange
        (idempotent).

        A queue of that name declared without the cap (an earlier version) or with another one
        fails the declaration (PRECONDITION_FAILED): it is kept as it is, with its messages,
        and a warning says how to cap it by a broker policy (README, "Dead-letter queues")."""
        wanted: dict[str, Any] = dict(self._dead_letter_cap.arguments())
        try:
            async with self._channel() as channel:
                await channel.declare_queue(self._name(name), durable=True, arguments=wanted)
        except ChannelPreconditionFailed:
            async with self._channel() as channel:
                await channel.declare_queue(self._name(name), passive=True)
            log.warning(
                "dead_letter_queue_kept_as_declared",
                queue=name,
                wanted=wanted,
                hint="cap it with a broker policy: README, 'Dead-letter queues'",
            )
        async with self._channel() as channel:
            declared = await channel.get_queue(self._name(name), ensure=False)
            await declared.bind(
                self._name(topology.DEAD_LETTER.name), routing_key=self._name(routing_key)
            )

    async def delete(self, name: str, *, if_empty: bool = False) -> None:
        """Delete queue `name` (canonical); with `if_empty`, only when it holds nothing
        (counted first: quorum queues refuse the broker's `if_empty`). Raises when it is
        missing or the broker refuses."""
        async with self._channel() as channel:
            if if_empty:
                found = await channel.declare_queue(self._name(name), passive=True)
                result: Any = found.declaration_result
                if result.message_count != 0:
                    return
            await channel.queue_delete(self._name(name))

    async def take(self, name: str) -> AsyncIterator[AbstractIncomingMessage]:
        """The messages still in queue `name` (canonical), one at a time, each to be settled
        by the caller (e.g. dead-lettered, then acked)."""
        async with self._channel() as channel:
            source = await channel.get_queue(self._name(name), ensure=False)
            while (message := await source.get(no_ack=False, fail=False)) is not None:
                yield message

    # Exchanges ----------------------------------------------------------------------------
    async def exchange(self, name: str) -> None:
        """Declare the topic exchange `name` (the broker's name) (idempotent)."""
        async with self._channel() as channel:
            await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)

    async def delete_exchange(self, name: str) -> None:
        """Delete the exchange `name` (canonical) and every binding from or to it; one that
        does not exist is gone already (RabbitMQ answers delete-ok; a broker that answers
        NOT_FOUND instead is taken at its word). Raises when the deletion fails otherwise
        (refused, channel or connection lost)."""
        with contextlib.suppress(ChannelNotFoundEntity):
            async with self._channel() as channel:
                await channel.exchange_delete(self._name(name))

    async def join(self, destination: str, source: str, routing_key: str) -> None:
        """Route what `source` takes with `routing_key` on into `destination` (exchanges,
        the broker's names, declared beforehand)."""
        async with self._channel() as channel:
            target = await channel.get_exchange(destination, ensure=False)
            await target.bind(source, routing_key=routing_key)
