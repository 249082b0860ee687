"""The broker's addresses: one RabbitMQ node, or the nodes of a cluster, any of which will do.

`AMQP_URL` lists them comma-separated. A client connects to the first node that answers, in
the order given; once connected, a robust connection that loses its node (or fails an attempt
to reach one) tries the next node on its next attempt, round the list, so it never waits for
the node it lost while another answers. aio-pika's robust reconnect does the waiting and the
restoring; all this adds is which node each attempt goes to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from faststream.rabbit import RabbitBroker
from faststream.rabbit.utils import build_url
from yarl import URL

from vsm.kit.wire import KitConnection

__all__ = ["SCHEMES", "BrokerAddresses", "broker_urls", "redacted"]

log = structlog.get_logger("vsm.addresses")

SCHEMES = ("amqp", "amqps")
Connected = TypeVar("Connected")


def broker_urls(amqp_url: str) -> tuple[str, ...]:
    """The URLs in `amqp_url` (comma-separated), each checked to be an AMQP URL with a host.

    A `ValueError` names a bad one by its position, never by its text (it may hold a password).
    """
    urls = tuple(part.strip() for part in amqp_url.split(","))
    for position, url in enumerate(urls, start=1):
        where = f"broker address {position} of {len(urls)}"
        try:
            parts = urlsplit(url)
            valid = parts.scheme in SCHEMES and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is no number
            valid = False
        if not valid:
            raise ValueError(
                f"{where} is not an amqp:// or amqps:// URL with a host (several URLs are "
                "separated by commas; a comma inside a URL, e.g. in a password, is written %2C)"
            )
    return urls


def redacted(url: str) -> str:
    """`url` without its password, for logs and errors."""
    parsed = URL(url)
    return str(parsed.with_password("***") if parsed.password else parsed)


class BrokerAddresses:
    """The nodes a service may connect to, in the order to try them."""

    def __init__(self, amqp_url: str) -> None:
        self.urls = broker_urls(amqp_url)

    def __str__(self) -> str:
        return ",".join(redacted(url) for url in self.urls)

    def next_node(
        self, connection: AbstractConnection | None, _: BaseException | None = None
    ) -> None:
        """An `on_close` callback of a robust connection: point its next attempt at the node
        after the one it used. aio-pika calls it on every close, a failed attempt included,
        and reads the connection's public `url` at every attempt."""
        if len(self.urls) == 1 or not isinstance(connection, aio_pika.Connection):
            return
        here = _node(connection.url)
        nodes = [_node(URL(url)) for url in self.urls]
        position = nodes.index(here) if here in nodes else -1
        connection.url = URL(self.urls[(position + 1) % len(self.urls)])

    def rabbit_broker(
        self, *, on_close: Sequence[Callable[..., Any]] = (), **options: Any
    ) -> RabbitBroker:
        """A FastStream broker on these nodes that fails over to the next one it loses; connect
        it with `connect_broker`."""
        broker = RabbitBroker(self.urls[0], on_close=[self.next_node, *on_close], **options)
        # FastStream passes its connection arguments to aio-pika's `connect_robust` as they
        # are and offers no parameter for the connection's class; the kit's batches frames
        # (`vsm.kit.wire`; tests/integration/test_kit_wire.py fails if this stops working).
        broker._connection_kwargs["connection_class"] = KitConnection
        return broker

    async def connect_broker(self, broker: RabbitBroker) -> AbstractRobustConnection:
        """Connect `broker` (made by `rabbit_broker`) to the first node that answers."""

        async def at(url: str) -> AbstractRobustConnection:
            # FastStream's broker takes one URL, at construction, and offers no public way to
            # change it; its connection (where `next_node` acts) exists only once connected.
            # So the first connection's URL is set here (tests/integration/
            # test_broker_addresses.py fails if this stops working).
            broker._connection_kwargs["url"] = str(build_url(url))
            connection: AbstractRobustConnection = await broker.connect()
            return connection

        return await self._first(at)

    async def connect_robust(self, **options: Any) -> AbstractRobustConnection:
        """An aio-pika robust connection to the first node that answers, failing over like a
        service's broker."""

        async def at(url: str) -> AbstractRobustConnection:
            connection: AbstractRobustConnection = await aio_pika.connect_robust(url, **options)
            return connection

        connection = await self._first(at)
        connection.close_callbacks.add(self.next_node)
        return connection

    async def connect(self, **options: Any) -> AbstractConnection:
        """A plain aio-pika connection to the first node that answers, for a short task."""

        async def at(url: str) -> AbstractConnection:
            connection: AbstractConnection = await aio_pika.connect(url, **options)
            return connection

        return await self._first(at)

    async def _first(self, connect: Callable[[str], Awaitable[Connected]]) -> Connected:
        *others, last = self.urls
        for url in others:
            try:
                return await connect(url)
            except CONNECTION_EXCEPTIONS as error:
                log.warning("broker_node_unreachable", node=redacted(url), error=repr(error))
        return await connect(last)


def _node(url: URL) -> tuple[str | None, int]:
    return url.host, url.port or (5671 if url.scheme == "amqps" else 5672)
