"""What keeps other sites out of the console: Host and Origin allow-lists, JSON-only actions.

The console's forms post JSON to the REST API itself (`/api/vsm/...`), signed in by the
session cookie instead of a bearer header: the bridge below admits such a request only when
it says it comes from the console (`X-VSM-Console`, a header no cross-site form can send
without a CORS preflight, which other origins fail), its Host and Origin are allowed, its
body is JSON, and the session may operate; it then hands the REST route the session's token
as `Authorization: Bearer`, so every check of the REST API applies as to any client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from vsm.mcp_gateway.console.session import COOKIE, ScopeOf, session_of

CONSOLE_HEADER = b"x-vsm-console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Refusal = tuple[int, str, str]


def _matches(value: str, allowed: list[str]) -> bool:
    for pattern in allowed:
        if pattern.endswith(":*"):
            head, _, port = value.rpartition(":")
            if head == pattern[:-2] and port.isdigit():
                return True
        elif value == pattern:
            return True
    return False


@dataclass(frozen=True)
class Peers:
    """The Host and Origin values the gateway answers (the MCP settings, one list for both)."""

    hosts: list[str]
    origins: list[str]

    def refuse_host(self, host: str | None) -> Refusal | None:
        if host is None or not _matches(host, self.hosts):
            return 421, "misdirected_request", f"host {host!r} is not served here"
        return None

    def refuse_action(self, method: str, origin: str | None, content_type: str) -> Refusal | None:
        """A state-changing request: JSON only, from an allowed origin."""
        if method in SAFE_METHODS:
            return None
        if origin is None or not _matches(origin, self.origins):
            return 403, "origin_not_allowed", f"origin {origin!r} may not act here"
        if content_type.split(";", maxsplit=1)[0].strip().lower() != "application/json":
            return 415, "unsupported_media_type", "actions take application/json bodies only"
        return None


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie(scope: Scope, name: str) -> str | None:
    for part in (header(scope, b"cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def refuse(send: Send, refusal: Refusal) -> None:
    status, code, message = refusal
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


def console_bridge(peers: Peers, scope_of: ScopeOf) -> object:
    """Litestar middleware: the console's own requests to `/api/vsm`, admitted by session."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def bridge(scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] != ScopeType.HTTP
                or not scope["path"].startswith("/api/vsm/")
                or header(scope, CONSOLE_HEADER) is None
                or header(scope, b"authorization") is not None
            ):
                await app(scope, receive, send)
                return
            refusal = admit(scope, peers, scope_of)
            if isinstance(refusal, tuple):
                await refuse(send, refusal)
                return
            headers = [*scope["headers"], (b"authorization", f"Bearer {refusal}".encode())]
            await app({**scope, "headers": headers}, receive, send)

        return bridge

    return middleware


def admit(scope: HTTPScope, peers: Peers, scope_of: ScopeOf) -> Refusal | str:
    """The session's token for a console request to the REST API, or why it is refused."""
    method = scope["method"]
    refusal = peers.refuse_host(header(scope, b"host")) or peers.refuse_action(
        method, header(scope, b"origin"), header(scope, b"content-type") or ""
    )
    if refusal is not None:
        return refusal
    session = session_of(cookie(scope, COOKIE), scope_of)
    if session is None:
        return 401, "signed_out", "the console session has ended: sign in again"
    if method not in SAFE_METHODS and not session.can_operate:
        return 403, "read_only", "this token may read but not act"
    return session.token
