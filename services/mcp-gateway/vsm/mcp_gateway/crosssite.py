"""No cross-site driving: which Host and Origin headers the gateway answers, and JSON bodies.

A web page the operator opens can send a "simple" request (a form or `text/plain` POST needs
no CORS preflight), and a rebound DNS name can make the browser send it as same-origin. So a
request must name an allowed Host (421 otherwise), carry no Origin or an allowed one (403),
and a mutation's body must be `application/json` (415), which no simple request can send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litestar.config.cors import CORSConfig
from litestar.types import HTTPResponseStartEvent, Send

from vsm.mcp_gateway.settings import Settings

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_HEADERS = ["mcp-session-id", "mcp-protocol-version"]


@dataclass(frozen=True)
class Refusal:
    """An answer instead of the route's: an `ErrorBody` (`error`, `message`) with a status."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    async def send(self, send: Send) -> None:
        body = json.dumps({"error": self.code, "message": self.message}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        raw += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": self.status,
            "headers": raw,
        }
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})


def allowed(settings: Settings) -> tuple[list[str], list[str]]:
    """The allowed Hosts and Origins: the settings' lists, plus the public host (over https)."""
    hosts, origins = list(settings.allowed_hosts), list(settings.allowed_origins)
    if public := settings.public_host:
        hosts += [public, f"{public}:*"]
        origins += [f"https://{public}", f"https://{public}:*"]
    return hosts, origins


def pattern(allowed: list[str]) -> str:
    """One regex for a list of Hosts or Origins, where a trailing `:*` means any port."""
    parts = [re.escape(a[:-2]) + r":\d{1,5}" if a.endswith(":*") else re.escape(a) for a in allowed]
    return "^(" + "|".join(parts) + ")$" if parts else "^$"


@dataclass(frozen=True)
class SameSite:
    hosts: re.Pattern[str]
    origins: re.Pattern[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> SameSite:
        hosts, origins = allowed(settings)
        return cls(re.compile(pattern(hosts), re.I), re.compile(pattern(origins), re.I))

    def refusal(self, headers: Mapping[str, str]) -> Refusal | None:
        host, origin = headers.get("host", ""), headers.get("origin")
        if not self.hosts.fullmatch(host):
            return Refusal(
                421,
                "misdirected_request",
                "this Host is not served here (VSM_ALLOWED_HOSTS, VSM_PUBLIC_HOST)",
            )
        if origin is not None and not self.origins.fullmatch(origin):
            return Refusal(
                403,
                "origin_not_allowed",
                "requests from this Origin are refused (VSM_ALLOWED_ORIGINS, VSM_PUBLIC_HOST)",
            )
        return None


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def media_refusal(method: str, headers: Mapping[str, str], reads_body: bool) -> Refusal | None:
    """415 for a mutation whose body is not declared JSON: a route that reads a body always
    needs `Content-Type: application/json`; any other mutation only when it sends a body or
    a content type."""
    if method not in MUTATIONS or is_json(headers.get("content-type")):
        return None
    sends_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if not (reads_body or sends_body or "content-type" in headers):
        return None
    return Refusal(
        415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)"
    )


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The MCP SDK's own DNS-rebinding check, on the same lists (behind the gateway's)."""
    from mcp.server.transport_security import TransportSecuritySettings  # with the server

    hosts, origins = allowed(settings)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def cors(settings: Settings) -> CORSConfig:
    """CORS for browser clients from the allowed origins (REST and MCP, with the MCP headers)."""
    return CORSConfig(
        allow_origins=[],
        allow_origin_regex=pattern(allowed(settings)[1]),
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=[*CORS_HEADERS, "content-type", "authorization", "last-event-id"],
        expose_headers=[*CORS_HEADERS, "www-authenticate"],
    )
