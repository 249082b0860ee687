"""An outside service on loopback that records what reached it (connections, paths, Host
headers, TLS server names) and answers from a script: for the api and sensor agents and the
egress guard, whose tests assert what never arrived as much as what did."""

from __future__ import annotations

import json
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import Handler, LoopbackFake


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    """JSON-encoded, unless already bytes."""
    headers: dict[str, str] = field(default_factory=dict)


class Listener(LoopbackFake):
    label = "listener"

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        super().__init__(host, tls)
        self.paths: list[str] = []
        self.hosts: list[str | None] = []
        self.server_names: list[str | None] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        if tls is not None:
            tls.sni_callback = self._named

    def _named(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def _handle(self, handler: Handler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        if length:
            handler.rfile.read(length)
        self.paths.append(handler.path)
        self.hosts.append(handler.headers.get("host"))
        reply = self.replies.popleft() if self.replies else self.default
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
