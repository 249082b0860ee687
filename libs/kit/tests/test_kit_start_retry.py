"""A service whose broker start-up fails part-way (the broker closes its connection while it
declares the topology, as RabbitMQ does with `INTERNAL_ERROR` when a quorum queue another
service has just declared times out a consumer on a loaded machine) tries again from a new
connection and starts, rather than exiting (uvicorn's exit 3)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.probe import Probe
from vsm.contract.health import Ping, Pong
from vsm.kit.bus import expect
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings

pytestmark = pytest.mark.integration

CUT_AFTER = 6000
"""Bytes from the client: past the AMQP handshake (under 1 kB), within the declarations."""


class CuttingProxy:
    """A TCP relay to the broker that cuts the first connection once `CUT_AFTER` bytes of the
    client's have gone through; later connections are relayed whole."""

    def __init__(self, broker: tuple[str, int]) -> None:
        self.broker = broker
        self.connections = 0
        self.cut = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cutting = self.connections == 1
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.broker)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, limit: int | None
        ) -> None:
            passed = 0
            with contextlib.suppress(OSError):
                while data := await source.read(4096):
                    if limit is not None and passed + len(data) > limit:
                        self.cut += 1
                        break
                    passed += len(data)
                    sink.write(data)
                    await sink.drain()
            for side in (writer, upstream_writer):
                side.transport.abort()

        await asyncio.gather(
            pipe(reader, upstream_writer, CUT_AFTER if cutting else None),
            pipe(upstream_reader, writer, None),
        )


async def test_a_start_up_cut_off_by_the_broker_is_tried_again_and_the_service_starts(
    amqp_url: str, namespace: str, probe: Probe
) -> None:
    parts = urlsplit(amqp_url)
    proxy = CuttingProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    port = await proxy.start()
    via_proxy = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}")
    )
    settings = ServiceSettings(amqp_url=via_proxy, vsm_namespace=namespace)
    runtime = Runtime("intelligence", settings)
    try:
        async with asyncio.timeout(120), runtime.lifespan(runtime.http_app()):
            assert proxy.cut == 1  # the first attempt was cut off part-way
            assert runtime.bus.declared
            reply = await probe.bus.request("intelligence", "ping", Ping())
            assert expect(reply, Pong).service == "intelligence"
    finally:
        await proxy.close()
