"""Request/reply over RabbitMQ direct reply-to: one long-lived reply consumer, a correlation map.

FastStream's `broker.request()` opens a reply consumer per call; a service that asks often
(the gateways) keeps one consumer and matches replies by correlation id instead.

The reply consumer lives on a robust channel, so it comes back when the connection does.
A reply addressed to the old channel cannot arrive, so requests pending when the connection
drops fail at once with `BrokerUnavailable` instead of waiting for their deadline; so does a
request sent while the broker is away. A request the broker nacks is sent again on a new
channel (`vsm.kit.confirms`); the old one keeps its reply consumer until it is closed, so the
requests still on it get their replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq import spec
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError

from vsm.kit.confirms import ConfirmingChannel

__all__ = ["CONNECTION_LOST", "REPLY_TO", "BrokerUnavailable", "RequestTimeout", "Requester"]

REPLY_TO = "amq.rabbitmq.reply-to"
CONNECTION_LOST = (AMQPConnectionError, ChannelInvalidStateError, ConnectionError)
"""What a publish raises when the broker is away (not a refusal such as an unroutable key)."""


class RequestTimeout(Exception):
    """No reply within the deadline."""


class BrokerUnavailable(RequestTimeout):
    """No reply can come: the broker connection was down, or dropped before the reply."""


class Requester:
    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}
        self.confirming = ConfirmingChannel(on_open=self._open, on_retire=self._retire)

    async def start(self, connection: AbstractRobustConnection) -> None:
        await self.confirming.open(connection)

    async def _open(self, channel: AbstractChannel) -> None:
        channel.close_callbacks.add(self._connection_lost)
        # Declared (passively) rather than merely named, so the robust channel restores the
        # consumer after a reconnection.
        queue = await channel.declare_queue(REPLY_TO, passive=True)
        await queue.consume(self._on_reply, no_ack=True)

    def _retire(self, channel: AbstractChannel) -> None:
        """A channel replaced after a nack: its closing loses no request but its own."""
        channel.close_callbacks.discard(self._connection_lost)

    async def stop(self) -> None:
        for future in self._pending.values():
            future.cancel()
        with contextlib.suppress(Exception):
            await self.confirming.close()

    def _connection_lost(self, _: Any, error: BaseException | None) -> None:
        lost = BrokerUnavailable(f"the broker connection was lost: {error!r}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(lost)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)

    async def request(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        timeout: float,
    ) -> AbstractIncomingMessage:
        """Publish `body` (confirmed, mandatory) and wait for the reply matching its
        correlation id (one is made when `properties` has none)."""
        if self.confirming.channel is None:
            raise RuntimeError("requester is not started")
        correlation_id = properties.correlation_id or str(uuid.uuid4())
        properties.correlation_id = correlation_id
        properties.reply_to = REPLY_TO
        future = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(timeout):
                await self.confirming.publish(
                    exchange, routing_key, body, properties, mandatory=True
                )
                reply: AbstractIncomingMessage = await future
                return reply
        except TimeoutError as error:
            raise RequestTimeout(f"no reply from {routing_key!r} within {timeout:g}s") from error
        except CONNECTION_LOST as error:
            raise BrokerUnavailable(f"no reply from {routing_key!r}: {error!r}") from error
        finally:
            self._pending.pop(correlation_id, None)
