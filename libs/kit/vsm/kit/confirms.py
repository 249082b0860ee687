"""A publishing channel (publisher confirms, returns raised) that a nack replaces.

RabbitMQ 3.10 (Debian's package, which the tests' clusters run) keeps, per channel and per
quorum queue, the queue's servers as the queue's record named them when the channel first
published to it, leader first. That first publish (with confirms) registers the channel as
an enqueuer by a call to that leader's node (`rabbit_fifo_client:enqueue/3`); when that node
is down, the publish is nacked and the channel's state is left as it was, so every later
publish of the channel to that queue calls the dead node again and is nacked too, for as
long as the channel lives, though the queue has long elected a new leader. A channel first
publishing to a queue in the seconds between the loss of its leader's node and the update of
its record (a service that reconnects from the lost node is one) is poisoned so. Seen in the
three-node fault test: the gateway's requests to `operations` were nacked (answered 404,
"no queue takes") for minutes; operations' results were nacked and their commands
redelivered and executed again. tests/faults/test_stale_leader.py shows it on one node.

So a nacked publish here retires its channel (closed once its other publishes have had
time to settle) and is published again on a new one, whose broker side starts afresh from
the queue's record as it is then, after a pause that grows: up to `NACK_PAUSES`, then the
nack is raised. A nack that persists (a queue full with `reject-publish`) costs the
publisher those pauses before it is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq import spec
from aiormq.exceptions import ChannelInvalidStateError, DeliveryError

__all__ = ["NACK_PAUSES", "RETIRE_AFTER_S", "ConfirmingChannel", "OnOpen", "nacked", "publish"]

log = structlog.get_logger("vsm.confirms")

NACK_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Before each new attempt after a nack, in seconds (7.75 s in all: a quorum queue of a
loaded three-node cluster was seen electing its new leader up to 5 s after a node's loss)."""
RETIRE_AFTER_S = 60.0
"""How long a replaced channel stays open for the publishes (and replies) still on it."""

OnOpen = Callable[[AbstractChannel], Awaitable[None]]


def nacked(error: BaseException) -> bool:
    """True when the broker refused a publish (`Basic.Nack`), not when it returned it."""
    return isinstance(error, DeliveryError) and isinstance(error.frame, spec.Basic.Nack)


async def publish(
    channel: AbstractChannel,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: spec.Basic.Properties,
    *,
    mandatory: bool,
) -> None:
    """`body` published on `channel` as built, straight through its aiormq channel (what
    aio-pika's `Exchange.publish` does, less its `Message` object, which costs the publish
    more than the protocol's own properties; the exchange is named, never looked up);
    waits for the confirm on a confirming channel."""
    if channel.is_closed:
        raise ChannelInvalidStateError(f"{channel!r} closed")
    underlay = await channel.get_underlay_channel()
    await underlay.basic_publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        properties=properties,
        mandatory=mandatory,
    )


class ConfirmingChannel:
    """The current channel of a publisher, its exchanges, and its replacement on a nack.

    `on_open` prepares each new channel (a consumer on it, a callback); `on_retire` undoes
    what must not outlive the channel's retirement (it is still open then)."""

    def __init__(
        self,
        on_open: OnOpen | None = None,
        on_retire: Callable[[AbstractChannel], None] | None = None,
        pauses: tuple[float, ...] = NACK_PAUSES,
    ) -> None:
        self.on_open = on_open
        self.on_retire = on_retire
        self.pauses = pauses
        self.renewed = 0
        """Channels replaced after a nack, since start."""
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._renewing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def channel(self) -> AbstractChannel | None:
        return self._channel

    async def open(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel = await self._new()

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        for task in self._retiring:
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if channel is not None and not channel.is_closed:
            await channel.close()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        mandatory: bool,
    ) -> None:
        """Publish and wait for the confirm; a nack is retried on a new channel (see above),
        a return (`mandatory`, unroutable) or a lost connection raises at once."""
        for pause in (*self.pauses, None):
            channel = self._channel
            if channel is None:
                raise RuntimeError("the channel is not open")
            try:
                await publish(channel, exchange, routing_key, body, properties, mandatory=mandatory)
                return
            except DeliveryError as error:
                if pause is None or not nacked(error):
                    raise
                log.warning(
                    "publish_nacked",
                    exchange=exchange or "amq.default",
                    routing_key=routing_key,
                    retry_in_s=pause,
                )
                await self._renew(channel)
                await asyncio.sleep(pause)

    async def _new(self) -> AbstractChannel:
        if self._connection is None:
            raise RuntimeError("the channel is not open")
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        if self.on_open is not None:
            await self.on_open(channel)
        return channel

    async def _renew(self, nacked_on: AbstractChannel) -> None:
        """Replace `nacked_on` unless another nacked publish has already done so."""
        async with self._renewing:
            if self._channel is not nacked_on:
                return
            self._channel = await self._new()
            self.renewed += 1
        if self.on_retire is not None:
            self.on_retire(nacked_on)
        task = asyncio.create_task(self._retire(nacked_on))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(channel: AbstractChannel) -> None:
        await asyncio.sleep(RETIRE_AFTER_S)
        with contextlib.suppress(Exception):
            await channel.close()
