"""The operator's word on outbound HTTP, as plain data: which URL prefixes may be called, and
which exact `host:port` may be reached although its address is private."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vsm.kit.egress.addresses import refusal
from vsm.kit.egress.urls import Blocked, Destination, destination

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ENDPOINT",
    "EgressPolicy",
    "allowed_prefix",
    "is_address",
    "private_endpoint",
]

DEFAULT_MAX_BODY_BYTES = 256 * 1024
ENDPOINT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[^\[\]/:@\\?#]+):[0-9]{1,5}")


@dataclass(frozen=True)
class EgressPolicy:
    """Empty, it allows nothing: no outbound HTTP until the operator names destinations."""

    allowed: tuple[Destination, ...] = ()
    private: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def parse(
        cls,
        urls: Iterable[str],
        private: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> EgressPolicy:
        """From the settings; `ValueError` names the entry that is not a prefix or endpoint."""
        return cls(
            tuple(map(allowed_prefix, urls)),
            frozenset(map(private_endpoint, private)),
            max_body_bytes,
        )

    def permit(self, url: str) -> Destination:
        """The destination of `url` when the list admits it and its literal address (if it is
        one) may be reached; else `Blocked`. Names are judged again once resolved."""
        target = destination(url)
        if not any(target.within(prefix) for prefix in self.allowed):
            listed = "it is empty: no outbound HTTP" if not self.allowed else "not listed there"
            raise Blocked("not_allowed", f"{target.url} is outside EGRESS_ALLOWED_URLS ({listed})")
        self.check_addresses(target, [target.host] if is_address(target.host) else [])
        return target

    def check_addresses(self, target: Destination, addresses: Sequence[str]) -> None:
        """`Blocked` when any address `target`'s host stands for is private, unless the
        operator names that exact endpoint in `EGRESS_ALLOWED_PRIVATE`."""
        if target.endpoint in self.private:
            return
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise Blocked(
                    "private_address",
                    f"{target.host} is {address}, {why}; reachable only if "
                    f"EGRESS_ALLOWED_PRIVATE names {target.endpoint}",
                )


def is_address(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def allowed_prefix(url: str) -> Destination:
    try:
        prefix = destination(url)
    except Blocked as refused:
        raise ValueError(f"EGRESS_ALLOWED_URLS: {url!r}: {refused.message}") from refused
    if prefix.query or "#" in url:
        raise ValueError(f"EGRESS_ALLOWED_URLS: {url!r}: a prefix has no query or fragment")
    return prefix


def private_endpoint(entry: str) -> str:
    if not ENDPOINT.fullmatch(entry):
        raise ValueError(f"EGRESS_ALLOWED_PRIVATE: {entry!r} is not an exact host:port")
    try:
        return destination(f"http://{entry}/").endpoint
    except Blocked as refused:
        raise ValueError(f"EGRESS_ALLOWED_PRIVATE: {entry!r}: {refused.message}") from refused
