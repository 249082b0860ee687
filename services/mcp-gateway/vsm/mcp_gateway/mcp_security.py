"""The MCP endpoint's gate: bearer token, per-client rate limit, allowed hosts and origins.

Host/Origin checks and the body-size cap are the SDK's own (`TransportSecuritySettings`,
`max_request_body_size`); the token and the rate limit are checked here, before the SDK
sees the request, so a stranger costs nothing but a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

WINDOW_S = 60.0


@dataclass
class RateLimiter:
    """A sliding one-minute window of request times per client (token digest or IP)."""

    per_minute: int
    max_clients: int = 10_000
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str, now: float) -> float | None:
        """None when `client` may go ahead (and counts the request), else seconds to wait."""
        times = self._seen.get(client)
        if times is None:
            if len(self._seen) >= self.max_clients:
                self._forget_idle(now)
            times = self._seen.setdefault(client, deque())
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            return WINDOW_S - (now - times[0])
        times.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, t in self._seen.items() if not t or now - t[-1] >= WINDOW_S]:
            del self._seen[client]


def transport_security(
    allowed_hosts: list[str], allowed_origins: list[str], public_host: str
) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection, widened by the public host (served over https)."""
    hosts, origins = list(allowed_hosts), list(allowed_origins)
    if public_host:
        hosts += [public_host, f"{public_host}:*"]
        origins += [f"https://{public_host}", f"https://{public_host}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def refuse(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


@dataclass
class McpGate:
    """ASGI middleware: 503 without a configured token, 401 without the right one, 429 past
    the client's rate. CORS preflights never get here: the app's CORS layer answers them."""

    app: ASGIApp
    token: str | None
    limiter: RateLimiter
    clock: Callable[[], float] = time.monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is None:
            await refuse(send, 503, "mcp_disabled", "MCP is disabled: MCP_AUTH_TOKEN is not set")
            return
        presented = bearer_token(scope.get("headers", []))
        if presented is None or not hmac.compare_digest(
            presented.encode(errors="surrogateescape"), self.token.encode()
        ):
            await refuse(
                send,
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="vsm-mcp", error="invalid_token"'},
            )
            return
        client = hashlib.sha256(presented.encode()).hexdigest()[:16] + "@" + client_ip(scope)
        wait = self.limiter.retry_after(client, self.clock())
        if wait is not None:
            await refuse(
                send,
                429,
                "rate_limited",
                f"more than {self.limiter.per_minute} MCP requests a minute; retry later",
                {"Retry-After": str(max(1, int(wait + 0.999)))},
            )
            return
        await self.app(scope, receive, send)


def origin_pattern(origins: list[str]) -> str:
    """One regex for browser CORS matching the same origins the SDK allows (`:*` = any port)."""
    parts = [re.escape(o[:-2]) + r":\d{1,5}" if o.endswith(":*") else re.escape(o) for o in origins]
    return "^(" + "|".join(parts) + ")$" if parts else "^$"
