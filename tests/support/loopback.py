"""A real HTTP server on loopback in a background thread: the base of every fake outside API.

The real client libraries (anthropic, python-telegram-bot) talk to it over HTTP, so tests
never patch a client. `close()` ends idle keep-alive connections, joins every thread, and
raises if a request handler crashed (a bug in the fake, which must not pass silently).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import sys
import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

_log = logging.getLogger("tests.fakes")


class LoopbackFake(ABC):
    """Subclasses answer requests in `_handle`; `label` names the fake in threads and logs."""

    label = "fake"

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._tls = tls
        self.connections = 0
        """Connections accepted: a test that must not reach the fake asserts none."""
        self._errors: list[BaseException] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _handle(self, handler: Handler) -> None:
        """Answer one request (method, path, headers and body are on `handler`)."""

    def _on_start(self) -> None:  # noqa: B027 - an optional hook
        """Called before serving starts (e.g. to reset state that close() set)."""

    def _on_close(self) -> None:  # noqa: B027 - an optional hook
        """Called before the server stops (e.g. to wake long polls)."""

    def start(self) -> Self:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError(f"{self.label} is already running")
        self._on_start()
        self._server = _Server((self._host, 0), self)
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.label}:{self._server.server_port}",
            daemon=True,  # only a safety net: close() joins it
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and join all threads; raises if a request handler crashed."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._on_close()
        self._server = self._thread = None
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()
        if self._errors:
            raise RuntimeError(f"{self.label}: a request handler failed") from self._errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The base URL to give the client library."""
        if self._server is None:
            raise RuntimeError(f"{self.label} is not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "http" if self._tls is None else "https"
        return f"{scheme}://{host}:{self._server.server_port}"


class _Server(ThreadingHTTPServer):
    """Tracks open connections so close() can end idle keep-alive ones and join every thread."""

    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    request_queue_size = 128  # listen backlog; the default 5 refuses bursts of concurrent calls

    def __init__(self, address: tuple[str, int], fake: LoopbackFake) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.fake.connections += 1
        super().process_request(request, client_address)

    def close_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().close_request(request)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they finish."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # the client went away, or close() cut the connection
            _log.debug("%s: connection ended: %r", self.fake.label, error)
            return
        _log.exception("%s: request handler failed", self.fake.label)
        if error is not None:
            self.fake._errors.append(error)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    server: _Server

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug(f"{self.server.fake.label}: " + format, *args)
