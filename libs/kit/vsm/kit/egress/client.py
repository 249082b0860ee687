"""An httpx client that holds to an `EgressPolicy` on every request and every connection.

The transport checks each request's URL against the list and sends it in its canonical
form. The network backend (httpcore's public interface) resolves the host once, checks
every address, and connects to a checked address itself, so no second lookup can
rebind the name between check and connect; TLS still verifies, and sends as SNI, the name.
Redirects are not followed, environment proxies are ignored (they would resolve names
out of sight), and bodies are read raw up to a cap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx
from opentelemetry import trace

from vsm.kit.egress.policy import EgressPolicy
from vsm.kit.egress.urls import Blocked, Destination, destination

__all__ = [
    "ERRORS",
    "TRACER",
    "Body",
    "EgressTransport",
    "Fetched",
    "GuardedBackend",
    "Resolver",
    "as_httpx_errors",
    "egress_client",
    "fetch",
    "read_capped",
    "system_resolver",
]

TRACER = trace.get_tracer("vsm.kit.egress")
"""Spans of outbound calls, made by the provider the service sets when tracing is on."""

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> the addresses to connect to, in order."""

ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.TimeoutException, httpx.TimeoutException),
)
"""httpcore's errors as httpx's, so callers catch one family."""


@contextlib.contextmanager
def as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for core, mapped in ERRORS:
            if isinstance(error, core):
                raise mapped(str(error)) from error
        raise


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, each once, in its order."""
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked one: never a refused connection."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = destination(f"http://{host if ':' not in host else f'[{host}]'}:{port}/")
        try:
            with anyio.fail_after(timeout):
                addresses = await self.resolver(target.host, port)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        self.policy.check_addresses(target, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.network.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        raise httpcore.ConnectError(f"{host}: {failure}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Blocked("malformed", "a unix socket is no outbound destination")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with as_httpx_errors():
            async for part in self.stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self.stream, "aclose", None)
        if close is not None:
            with as_httpx_errors():
                await close()


class EgressTransport(httpx.AsyncBaseTransport):
    """httpx's transport contract over httpcore's pool with the guarded backend."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
    ) -> None:
        self.policy = policy
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections // 5,
            network_backend=GuardedBackend(policy, resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.policy.permit(str(request.url))
        assert isinstance(request.stream, AsyncIterable)
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=target.scheme, host=target.host, port=target.port, target=target.target
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with TRACER.start_as_current_span(
            request.method,
            kind=trace.SpanKind.CLIENT,
            attributes=_client_attributes(request.method, target),
        ) as span:
            try:
                with as_httpx_errors():
                    answer = await self.pool.handle_async_request(sent)
            except Exception as error:
                span.set_attribute("error.type", type(error).__qualname__)
                raise
            span.set_attribute("http.response.status_code", answer.status)
            if answer.status >= 400:
                span.set_attribute("error.type", str(answer.status))
                span.set_status(trace.StatusCode.ERROR)
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=Body(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def _client_attributes(method: str, target: Destination) -> dict[str, str | int]:
    """OpenTelemetry's HTTP client attributes; the URL without its query, which may carry a
    credential."""
    return {
        "http.request.method": method,
        "url.full": dataclasses.replace(target, query="").url,
        "url.scheme": target.scheme,
        "server.address": target.host,
        "server.port": target.port,
    }


def egress_client(
    policy: EgressPolicy,
    timeout_s: float,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The one client for calls outside: policy-bound, no redirects, no environment proxies,
    uncompressed bodies (so a cap on bytes read is a cap on memory)."""
    return httpx.AsyncClient(
        transport=EgressTransport(policy, resolver, ssl_context),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


@dataclass(frozen=True)
class Fetched:
    """A response read up to the cap: `truncated` when the body was longer."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    truncated: bool

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The JSON document; `ValueError` when it is not one, or was cut."""
        if self.truncated:
            raise ValueError("the body was cut at the size cap")
        return json.loads(self.content)


async def fetch(
    client: httpx.AsyncClient, method: str, url: str, max_bytes: int, **options: Any
) -> Fetched:
    """One request to `url` in its canonical form (so the Host header names what is checked),
    its body streamed and read up to `max_bytes` (the rest is never read)."""
    request = client.build_request(method, destination(url).url, **options)
    response = await client.send(request, stream=True)
    try:
        content, truncated = await read_capped(response.aiter_raw(), max_bytes)
    finally:
        await response.aclose()
    return Fetched(response.status_code, response.headers, content, truncated)


async def read_capped(chunks: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in chunks:
        room = limit - len(body)
        body += chunk[:room]
        if len(chunk) > room:
            return bytes(body), True
    return bytes(body), False
