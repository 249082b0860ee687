"""The egress client against listeners on this machine's loopback (never another address):
what the operator did not name is refused before any connection, whatever form the address
takes or whatever a name resolves to; what it named is reached, under the name."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme

from tests.support.listener import Listener, Reply
from vsm.kit.egress import Blocked, EgressPolicy, destination, egress_client, fetch

CAP = 64 * 1024


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


@pytest.fixture
def listener6() -> Iterator[Listener]:
    with Listener("::1") as running:
        yield running


def resolving(names: dict[str, list[str]]) -> object:
    """A resolver standing in for DNS: the guard sees only what it answers."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in names:
            raise OSError(f"{host}: unknown")
        return names[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


async def call(policy: EgressPolicy, url: str, resolver: object = None) -> int:
    extra = {} if resolver is None else {"resolver": resolver}
    async with egress_client(policy, 5.0, **extra) as client:  # type: ignore[arg-type]
        return (await fetch(client, "GET", url, CAP)).status_code


LOOPBACK_FORMS = [
    "127.0.0.1",
    "localhost",
    "localhost.",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_loopback_in_any_form_is_never_reached_unless_its_endpoint_is_named(
    listener: Listener, host: str
) -> None:
    port = listener.url.rsplit(":", 1)[1]
    url = f"http://{host}:{port}/v1/x"
    closed = EgressPolicy.parse([url])
    with pytest.raises(Blocked) as refused:
        await call(closed, url)
    assert refused.value.reason == "private_address"
    assert listener.connections == 0

    opened = EgressPolicy.parse([url], [destination(url).endpoint])
    assert await call(opened, url) == 200
    assert listener.connections == 1
    assert listener.paths == ["/v1/x"]


async def test_ipv6_loopback_is_never_reached_unless_named(listener6: Listener) -> None:
    url = f"{listener6.url}/x"
    with pytest.raises(Blocked):
        await call(EgressPolicy.parse([url]), url)
    assert listener6.connections == 0
    assert await call(EgressPolicy.parse([url], [destination(url).endpoint]), url) == 200
    assert listener6.connections == 1


async def test_naming_one_endpoint_opens_no_other(listener: Listener) -> None:
    port = listener.url.rsplit(":", 1)[1]
    policy = EgressPolicy.parse([f"http://localhost:{port}/"], [f"127.0.0.1:{int(port) + 1}"])
    with pytest.raises(Blocked):
        await call(policy, f"http://localhost:{port}/")
    assert listener.connections == 0


async def test_a_name_that_resolves_to_loopback_is_refused_after_resolution(
    listener: Listener,
) -> None:
    port = int(listener.url.rsplit(":", 1)[1])
    url = f"http://upstream.test:{port}/v1/x"
    resolver = resolving({"upstream.test": ["127.0.0.1"]})
    with pytest.raises(Blocked) as refused:
        await call(EgressPolicy.parse([url]), url, resolver)
    assert "upstream.test is 127.0.0.1, loopback" in refused.value.message
    assert listener.connections == 0

    named = EgressPolicy.parse([url], [f"upstream.test:{port}"])
    assert await call(named, url, resolver) == 200
    # Connected to the address checked, speaking to the name: the system resolver never
    # heard of upstream.test, and the Host header is still the name.
    assert listener.hosts == [f"upstream.test:{port}"]
    assert resolver.asked == ["upstream.test", "upstream.test"]  # type: ignore[attr-defined]


async def test_every_address_of_a_name_is_checked_before_any_connection(
    listener: Listener,
) -> None:
    port = int(listener.url.rsplit(":", 1)[1])
    url = f"http://upstream.test:{port}/"
    # A loopback address first: a guard that skipped any check would connect to the listener
    # (and this test never makes it try an address off this machine).
    for answer in (["127.0.0.1", "8.8.8.8"], ["127.0.0.1", "::1"], ["::ffff:127.0.0.1"]):
        with pytest.raises(Blocked):
            await call(EgressPolicy.parse([url]), url, resolving({"upstream.test": answer}))
    assert listener.connections == 0


async def test_a_name_that_does_not_resolve_is_a_connection_error() -> None:
    url = "http://nowhere.test/"
    with pytest.raises(httpx.ConnectError, match=r"nowhere\.test"):
        await call(EgressPolicy.parse([url]), url, resolving({}))


@pytest.mark.parametrize(
    "escape",
    [
        "/v1/../admin/x",
        "/v1/%2e%2e/admin/x",
        "/v1/%2E%2E/admin/x",
        "/v1/..%2fadmin/x",
        "/v1/..%5cadmin/x",
        "/v1\\..\\admin/x",
        "/v1/.%2e/admin/x",
        "//v1/../admin/x",
        "/v10/x",
    ],
)
async def test_escapes_from_the_base_path_never_reach_outside_it(
    listener: Listener, escape: str
) -> None:
    base = f"{listener.url}/v1/"
    policy = EgressPolicy.parse([base], [destination(base).endpoint])
    with pytest.raises(Blocked) as refused:
        await call(policy, f"{listener.url}{escape}")
    assert refused.value.reason == "not_allowed"
    assert await call(policy, f"{listener.url}/v1/./x/%2e/y//z") == 200
    assert listener.paths == ["/v1/x/y/z"]


async def test_a_redirect_is_answered_not_followed(listener: Listener) -> None:
    port = listener.url.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}/admin"
    listener.default = Reply(302, {}, {"Location": elsewhere})
    policy = EgressPolicy.parse([f"{listener.url}/v1/"], [f"127.0.0.1:{port}"])
    assert await call(policy, f"{listener.url}/v1/go") == 302
    # Even a client told to follow judges each hop again: localhost is not named.
    async with egress_client(policy, 5.0) as client:
        with pytest.raises(Blocked):
            await client.get(f"{listener.url}/v1/go", follow_redirects=True)
    assert listener.paths == ["/v1/go", "/v1/go"]


async def test_an_oversized_body_is_cut_at_the_cap_and_flagged(listener: Listener) -> None:
    listener.default = Reply(body=b'{"items": [' + b'"x", ' * 500_000 + b'"x"]}')
    policy = EgressPolicy.parse([listener.url], [destination(listener.url).endpoint])
    async with egress_client(policy, 5.0) as client:
        fetched = await fetch(client, "GET", f"{listener.url}/big", CAP)
        small = await fetch(client, "GET", f"{listener.url}/big", 10 * 1024 * 1024)
    assert fetched.truncated
    assert len(fetched.content) == CAP
    with pytest.raises(ValueError, match="cut"):
        fetched.json()
    assert not small.truncated
    assert len(small.json()["items"]) == 500_001


async def test_environment_proxies_are_ignored(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Listener() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        policy = EgressPolicy.parse([listener.url], [destination(listener.url).endpoint])
        assert await call(policy, f"{listener.url}/x") == 200
    assert (proxy.connections, listener.connections) == (0, 1)


async def test_tls_verifies_and_names_the_host_while_connecting_to_the_checked_address() -> None:
    authority = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("upstream.test").configure_cert(served)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with Listener(tls=served) as listener:
        port = int(listener.url.rsplit(":", 1)[1])
        url = f"https://upstream.test:{port}/v1/x"
        policy = EgressPolicy.parse([url], [f"upstream.test:{port}"])
        resolver = resolving({"upstream.test": ["127.0.0.1"]})
        async with egress_client(policy, 5.0, resolver, trusting) as client:  # type: ignore[arg-type]
            assert (await fetch(client, "GET", url, CAP)).status_code == 200
    assert listener.server_names == ["upstream.test"]
    assert listener.hosts == [f"upstream.test:{port}"]
