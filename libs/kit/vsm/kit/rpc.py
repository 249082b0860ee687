"""Request/reply over RabbitMQ direct reply-to: one long-lived reply consumer, a correlation map.

FastStream's `broker.request()` opens a reply consumer per call; a service that asks often
(the gateways) keeps one consumer and matches replies by correlation id instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

REPLY_TO = "amq.rabbitmq.reply-to"


class RequestTimeout(Exception):
    """No reply within the deadline."""


class Requester:
    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def start(self, connection: AbstractRobustConnection) -> None:
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await self._channel.get_queue(REPLY_TO, ensure=False)
        await queue.consume(self._on_reply, no_ack=True)

    async def stop(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)

    async def request(
        self,
        exchange: str,
        routing_key: str,
        message: aio_pika.Message,
        timeout: float,
    ) -> AbstractIncomingMessage:
        """Publish `message` (confirmed, mandatory) and wait for the reply matching its id."""
        if self._channel is None:
            raise RuntimeError("requester is not started")
        correlation_id = message.correlation_id or str(uuid.uuid4())
        message.correlation_id = correlation_id
        message.reply_to = REPLY_TO
        future = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(timeout):
                target = self._exchanges.get(exchange)
                if target is None:
                    target = await self._channel.get_exchange(exchange, ensure=False)
                    self._exchanges[exchange] = target
                await target.publish(message, routing_key, mandatory=True)
                reply: AbstractIncomingMessage = await future
                return reply
        except TimeoutError as error:
            raise RequestTimeout(f"no reply from {routing_key!r} within {timeout:g}s") from error
        finally:
            self._pending.pop(correlation_id, None)
