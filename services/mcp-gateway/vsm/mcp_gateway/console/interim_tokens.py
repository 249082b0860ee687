"""INTERIM: which scope a presented token has, read from this service's settings.

Stands in for the edge's shared token model (`access.Tokens.scope_of`) until the two meet:
`MCP_AUTH_TOKEN` is an operate-scope token and each of `VSM_READ_TOKENS` a read-scope one.
The console only ever calls the `ScopeOf` it is given, so replacing this module changes
nothing else. Comparisons are constant-time.
"""

from __future__ import annotations

import hmac

from vsm.mcp_gateway.console.session import Scope, ScopeOf
from vsm.mcp_gateway.settings import Settings


def scope_of_settings(settings: Settings) -> ScopeOf:
    operate = [settings.mcp_auth_token] if settings.mcp_auth_token else []
    tokens: list[tuple[bytes, Scope]] = [
        *((t.get_secret_value().encode(), "operate") for t in operate),
        *((t.get_secret_value().encode(), "read") for t in settings.vsm_read_tokens),
    ]

    def scope_of(presented: str) -> Scope | None:
        given = presented.encode(errors="surrogateescape")
        found: Scope | None = None
        for token, scope in tokens:  # every token compared, whichever matches
            if token and hmac.compare_digest(given, token) and found is None:
                found = scope
        return found

    return scope_of
