"""The console's sign-in: the token, asked for once, kept in a cookie with a lifetime.

The cookie holds `<expiry>.<token>`: HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it), Secure over https, Path `/`. Every request checks both again:
past its expiry, or with a token the gateway no longer knows (revoked), the session is over
and the console asks for the token again. A replica or a restart needs no shared state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from litestar.datastructures import Cookie

Scope = Literal["read", "operate"]
ScopeOf = Callable[[str], Scope | None]
"""The token model: the scope a presented token grants, None for an unknown one."""

COOKIE = "vsm_console"
MAX_TOKEN = 4096


@dataclass(frozen=True)
class Session:
    token: str
    scope: Scope
    expires_at: float

    @property
    def can_operate(self) -> bool:
        return self.scope == "operate"


def cookie_value(token: str, expires_at: float) -> str:
    return f"{int(expires_at)}.{token}"


def session_of(value: str | None, scope_of: ScopeOf, now: float | None = None) -> Session | None:
    """The live session a cookie value stands for: None if absent, malformed, expired or
    revoked."""
    if not value or len(value) > MAX_TOKEN + 16:
        return None
    expiry, _, token = value.partition(".")
    if not expiry.isdigit() or not token:
        return None
    expires_at = float(expiry)
    if expires_at <= (time.time() if now is None else now):
        return None
    scope = scope_of(token)
    return None if scope is None else Session(token, scope, expires_at)


def session_cookie(token: str, lifetime_s: int, secure: bool) -> Cookie:
    expires_at = time.time() + lifetime_s
    return Cookie(
        key=COOKIE,
        value=cookie_value(token, expires_at),
        max_age=lifetime_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def cleared_cookie(secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict", secure=secure
    )
