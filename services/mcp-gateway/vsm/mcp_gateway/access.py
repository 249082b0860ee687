"""Who may do what at the edge: a bearer token becomes a scope, `read` or `operate`.

`Tokens.scope_of` is the one place where credentials are judged, for REST, MCP and whatever
else the gateway serves. `gate` puts every request but the probes through the edge's checks
in order: Host and Origin (no DNS rebinding, no cross-site driving), a token, its scope, then
a JSON body for a mutation, each refusal an `ErrorBody`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Send
from litestar.types import Scope as AsgiScope

from vsm.mcp_gateway import crosssite
from vsm.mcp_gateway.crosssite import Refusal, SameSite
from vsm.mcp_gateway.rate import RateLimiter
from vsm.mcp_gateway.settings import Settings

Scope = Literal["read", "operate"]
MIN_TOKEN_CHARS = 16
TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
"""Printable ASCII without spaces: what an `Authorization` header can carry."""
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Probes answer anyone (a kubelet sends the pod's IP as Host); nothing else does."""
REST_PREFIX = "/api/"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="vsm"'
SESSION_ROUTE: dict[str, Any] = {"access": "session"}
"""The `opt` of a route that admits its callers itself, by the console's session cookie (the
console's pages, events and assets): the gate checks its Host and Origin, not a bearer token."""
SETTINGS_HINT = (
    "set MCP_AUTH_TOKEN or VSM_OPERATE_TOKENS (operate) or VSM_READ_TOKENS (read), "
    f"each token at least {MIN_TOKEN_CHARS} characters"
)


def digest(token: str) -> bytes:
    """Fixed-length: comparing digests leaks neither a token's length nor where it differs."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse_tokens(setting: str, text: str, *, several: bool = True) -> list[str]:
    """The tokens of one setting (comma-separated when `several`); `ValueError` naming the
    setting and the token's position, never its text."""
    tokens = [t.strip() for t in (text.split(",") if several else [text])]
    tokens = [t for t in tokens if t]
    for position, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"{setting}: token {position} is shorter than {MIN_TOKEN_CHARS} characters"
            )
        if not TOKEN_CHARS.fullmatch(token):
            raise ValueError(
                f"{setting}: token {position} has a character a bearer token cannot carry "
                "(printable ASCII without spaces)"
            )
    return tokens


@dataclass(frozen=True)
class Tokens:
    """The configured tokens, as digests with the scope each grants."""

    granted: tuple[tuple[bytes, Scope], ...]

    @classmethod
    def of(cls, operate: Iterable[str] = (), read: Iterable[str] = ()) -> Tokens:
        operates: list[tuple[bytes, Scope]] = [(digest(t), "operate") for t in operate]
        reads: list[tuple[bytes, Scope]] = [(digest(t), "read") for t in read]
        return cls(tuple(operates + reads))

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        """`MCP_AUTH_TOKEN` is one more operate token; a bad token stops start-up."""
        auth = settings.mcp_auth_token.get_secret_value() if settings.mcp_auth_token else ""
        operate = settings.vsm_operate_tokens.get_secret_value()
        read = settings.vsm_read_tokens.get_secret_value()
        return cls.of(
            parse_tokens("MCP_AUTH_TOKEN", auth, several=False)
            + parse_tokens("VSM_OPERATE_TOKENS", operate),
            parse_tokens("VSM_READ_TOKENS", read),
        )

    @property
    def configured(self) -> bool:
        return bool(self.granted)

    def scope_of(self, presented: str) -> Scope | None:
        """The scope `presented` grants (operate wins over read), or None."""
        return self.scope_of_digest(digest(presented))

    def scope_of_digest(self, candidate: bytes) -> Scope | None:
        """The scope the token of digest `candidate` grants. Every configured token is
        compared, in constant time, whatever matches first."""
        matched = {scope for known, scope in self.granted if hmac.compare_digest(candidate, known)}
        return "operate" if "operate" in matched else "read" if matched else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (scheme in any case)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def required_scope(method: str, route_opt: Mapping[str, Any]) -> Scope:
    """A route's own `opt={"scope": ...}`, else `read` for reads and `operate` for the rest."""
    declared = route_opt.get("scope")
    if declared in {"read", "operate"}:
        return cast("Scope", declared)
    return "read" if method in READS else "operate"


def presented_digest(authorization: str | None) -> bytes | None:
    """The digest of the request's bearer token (None without one): computed once per
    request, for its scope and its rate window."""
    presented = bearer_token(authorization)
    return None if presented is None else digest(presented)


def access_refusal(tokens: Tokens, presented: bytes | None, needed: Scope) -> Refusal | None:
    """`presented`: the digest of the request's bearer token (`presented_digest`)."""
    if not tokens.configured:
        return Refusal(503, "no_token_configured", f"no token is configured: {SETTINGS_HINT}")
    granted = tokens.scope_of_digest(presented) if presented is not None else None
    if granted is None:
        return Refusal(
            401,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
            {"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )
    if needed == "operate" and granted == "read":
        return Refusal(
            403,
            "forbidden",
            "this token may only read; changing state needs an operate token",
            {"WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope", scope="operate"'},
        )
    return None


def headers_of(scope: AsgiScope) -> dict[str, str]:
    """The request's headers (the first of a repeated name), decoded as HTTP says: latin-1."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def rest_refusal(limiter: RateLimiter | None, path: str, presented: bytes | None) -> Refusal | None:
    """429 past the caller's REST rate (a caller: the digest of its valid token, so a made-up
    token never gets a window). MCP has its own limit; the console's pages are not REST."""
    if limiter is None or presented is None or not path.startswith(REST_PREFIX):
        return None
    return limiter.refusal(presented.hex()[:32], time.monotonic(), "REST")


def gate(
    site: SameSite, tokens: Tokens, limiter: RateLimiter | None = None
) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware (it runs once the route is known): Host 421, Origin 403, no token
    configured 503, no valid token 401, a read token on a mutation 403, past the caller's
    REST rate 429, a mutation's body other than JSON 415. The probes pass untouched."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: AsgiScope, receive: Receive, send: Send) -> None:
            if scope["path"] in OPEN_PATHS:
                await app(scope, receive, send)
                return
            if scope["type"] != ScopeType.HTTP:  # no WebSocket here: refuse, never bypass
                await send({"type": "websocket.close", "code": 1008, "reason": "not served"})
                return
            headers, method = headers_of(scope), scope["method"]
            handler = scope["route_handler"]
            needed = required_scope(method, handler.opt)
            if handler.opt.get("access") == SESSION_ROUTE["access"]:
                refusal = site.refusal(headers)
            else:
                presented = presented_digest(headers.get("authorization"))
                refusal = (
                    site.refusal(headers)
                    or access_refusal(tokens, presented, needed)
                    or rest_refusal(limiter, scope["path"], presented)
                    or crosssite.media_refusal(
                        method, headers, handler.parsed_data_field is not None
                    )
                )
            if refusal is None:
                await app(scope, receive, send)
            else:
                await refusal.send(send)

        return guarded

    return middleware
