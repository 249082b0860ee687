"""The bench's HTTP load: keep-alive HTTP/1.1 connections over asyncio streams, responses
parsed by httptools (the parser uvicorn uses on the services' side).

The REST cases measure the system, but the client runs on the same two cores. `httpx` spent
about 1.9 ms of CPU per request here, more than the gateway itself, and in a request/reply
case the client's CPU is on the measured path. This client spends a small fraction of that,
as the raw baselines' aio-pika client does, so a figure is the system's rather than the load
generator's. Enough HTTP for the bench's own requests (JSON bodies, `Content-Length`
responses), not a general client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass
class Response:
    status: int = 0
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class _Parsed:
    """httptools' callbacks, collecting one response."""

    def __init__(self, response: Response) -> None:
        self.response = response

    def on_body(self, body: bytes) -> None:
        self.response.body += body

    def on_message_complete(self) -> None:
        self.response.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> Response:
        self.writer.write(request)
        response = Response()
        parser = httptools.HttpResponseParser(_Parsed(response))
        while not response.complete:
            data = await self.reader.read(65536)
            if not data and not response.body and not response.status:
                raise ConnectionError("the server closed the connection")
            if not data:
                raise RuntimeError("the server closed the connection within a response")
            parser.feed_data(data)
        response.status = parser.get_status_code()
        return response

    def close(self) -> None:
        self.writer.close()


class LeanHttp:
    """A pool of keep-alive connections to one server: as many as requests in flight, each
    request with `headers` (e.g. the gateway's bearer token)."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._idle: list[_Connection] = []

    async def request(self, method: str, path: str, payload: Any = None) -> Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        request = head.encode() + body
        while self._idle:  # an idle connection the server closed (its keep-alive timeout)
            connection = self._idle.pop()  # fails before any response: try the next one
            try:
                return await self._exchange(connection, request)
            except ConnectionError:
                continue
        return await self._exchange(await self._connect(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Response:
        try:
            response = await connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        self._idle.append(connection)
        return response

    async def post(self, path: str, payload: Any) -> Response:
        return await self.request("POST", path, payload)

    async def delete(self, path: str) -> Response:
        return await self.request("DELETE", path)

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
