"""Addresses an agent never reaches unless the operator names them: this host, the private
networks around it, link-local (cloud metadata at 169.254.169.254) and the other
special-purpose ranges of the IANA registries. An owned table, not `ipaddress.is_global`,
whose answers differ between Python releases."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

__all__ = ["NAT64", "REFUSED_V4", "REFUSED_V6", "Address", "embedded_v4", "refusal"]

Address = IPv4Address | IPv6Address

REFUSED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), why)
    for network, why in (
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (and broadcast)"),
    )
)

REFUSED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), why)
    for network, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, ...)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)

NAT64 = IPv6Network("64:ff9b::/96")


def embedded_v4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), well-known NAT64
    (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::), each reaching that IPv4 host."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal(address: str | Address) -> str | None:
    """Why `address` is not to be reached (`loopback`, `private`, ...), or None when it is a
    public address. IPv6 forms of an IPv4 address are judged by that address."""
    ip = ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, IPv4Address):
        return next((why for network, why in REFUSED_V4 if ip in network), None)
    inner = embedded_v4(ip)
    if inner is not None:
        why = refusal(inner)
        return None if why is None else f"{why} (as IPv6)"
    return next((why for network, why in REFUSED_V6 if ip in network), None)
