"""A URL as the server will read it: scheme, host, port and a path with no dot segments,
encoded separators or doubled slashes, so an allow-list is checked against what is sent.

Lenient parsers disagree about `..%2f`, `%2e%2e`, `\\` and `127.1`; here each is read the
most dangerous way a server might read it, and the request is sent in that reading.
"""

from __future__ import annotations

import re
import socket
import string
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Literal, get_args
from urllib.parse import SplitResult, quote, urlsplit

__all__ = [
    "DEFAULT_PORTS",
    "DOUBLE_ESCAPE",
    "ESCAPE",
    "LABEL",
    "MAX_URL_CHARS",
    "NUMERIC",
    "PATH_SAFE",
    "REASONS",
    "SEPARATOR",
    "UNRESERVED",
    "Blocked",
    "Destination",
    "Reason",
    "canonical_host",
    "canonical_path",
    "destination",
]

Reason = Literal[
    "scheme", "userinfo", "malformed", "not_allowed", "outside_agent", "private_address"
]
"""Why a destination is refused; a closed set, so it may label a metric."""
REASONS: tuple[Reason, ...] = get_args(Reason)

MAX_URL_CHARS = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
PATH_SAFE = "!$&'()*+,;=:@%-._~"
SEPARATOR = re.compile(r"%2f|%5c|\\", re.IGNORECASE)
ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
DOUBLE_ESCAPE = re.compile(r"%25(2e|2f|5c)", re.IGNORECASE)
LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
NUMERIC = re.compile(r"0x[0-9a-f]*|[0-9]+")


class Blocked(Exception):
    """A destination an agent may not reach; `reason` is one of `REASONS`.

    Not a `vsm.contract.errors.Refused`: no request is declined, a call an agent would make
    is; the agent host turns it into the command's failed result."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    """Lower-case name without a trailing dot, or an IP address in its canonical form."""
    port: int
    path: str
    query: str = ""

    @property
    def endpoint(self) -> str:
        """`host:port` as `EGRESS_ALLOWED_PRIVATE` names it (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    @property
    def url(self) -> str:
        default = self.port == DEFAULT_PORTS[self.scheme]
        authority = self.endpoint.rsplit(":", 1)[0] if default else self.endpoint
        return f"{self.scheme}://{authority}{self.target}"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(segment for segment in self.path.split("/") if segment)

    def within(self, prefix: Destination) -> bool:
        """Same origin, and under the prefix's path by whole segments (`/v1` admits `/v1/x`,
        never `/v10`)."""
        origin = (self.scheme, self.host, self.port)
        depth = len(prefix.segments)
        return origin == (prefix.scheme, prefix.host, prefix.port) and (
            self.segments[:depth] == prefix.segments
        )


def destination(url: str) -> Destination:
    """`url` read as the server would; `Blocked` for what no agent may call."""
    if len(url) > MAX_URL_CHARS or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise Blocked("malformed", "a URL with spaces or control characters, or too long")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise Blocked("scheme", f"only http and https may be called, not {scheme or url!r}")
    if "@" in parts.netloc:
        raise Blocked("userinfo", "credentials in a URL are refused; send them in a header")
    if "\\" in parts.netloc:
        raise Blocked("malformed", f"a backslash in the host of {url!r}")
    try:
        port = parts.port
    except ValueError as error:
        raise Blocked("malformed", f"the port of {url!r}: {error}") from error
    if port == 0:
        raise Blocked("malformed", "port 0")
    host, path = canonical_host(parts), canonical_path(parts.path)
    return Destination(scheme, host, port or DEFAULT_PORTS[scheme], path, parts.query)


def canonical_host(parts: SplitResult) -> str:
    """The host as a resolver reads it: IPv4 in any legacy form (`127.1`, `2130706433`,
    `0x7f000001`) becomes dotted, IPv6 compressed, a name its lower-case A-label."""
    host = parts.hostname or ""
    if not host or "%" in host:
        raise Blocked("malformed", f"no usable host in {parts.netloc!r}")
    if parts.netloc.startswith("[") or ":" in host:
        try:
            return str(IPv6Address(host))
        except ValueError as error:
            raise Blocked("malformed", f"not an IPv6 address: {host!r}") from error
    try:
        name = host.removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError as error:
        raise Blocked("malformed", f"not a host name: {host!r}") from error
    labels = name.split(".")
    if NUMERIC.fullmatch(labels[-1]):
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError as error:
            raise Blocked("malformed", f"not an IPv4 address: {host!r}") from error
    if len(name) > 253 or not all(LABEL.fullmatch(label) for label in labels):
        raise Blocked("malformed", f"not a host name: {host!r}")
    return name


def canonical_path(raw: str) -> str:
    """Backslashes and encoded slashes are separators, encoded unreserved characters (`%2e`)
    are themselves, empty and dot segments go, `..` climbs (never above the root)."""
    if DOUBLE_ESCAPE.search(raw):
        raise Blocked("malformed", "a double-encoded dot or slash in the path")
    decoded = ESCAPE.sub(_unreserved, SEPARATOR.sub("/", raw))
    kept: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        if segment.split(";")[0] in (".", ".."):
            raise Blocked("malformed", "a dot segment with parameters (`..;`)")
        kept.append(quote(segment, safe=PATH_SAFE))
    trailing = bool(kept) and decoded.rsplit("/", 1)[-1] in ("", ".", "..")
    return "/" + "/".join(kept) + ("/" if trailing else "")


def _unreserved(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in UNRESERVED else f"%{escape[1].upper()}"
