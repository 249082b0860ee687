"""The egress policy as plain functions: URLs read the way a server would, prefixes matched
by whole segments, special-purpose addresses refused, the operator's settings parsed."""

from __future__ import annotations

import pytest

from vsm.kit.egress import Blocked, EgressPolicy, destination, refusal

BASE = "https://api.example.com/v1/"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://api.example.com/v1/../admin/x", "/admin/x"),
        ("https://api.example.com/v1/%2e%2e/admin", "/admin"),
        ("https://api.example.com/v1/%2E%2e/admin", "/admin"),
        ("https://api.example.com/v1/.%2e/admin", "/admin"),
        ("https://api.example.com/v1/..%2fadmin", "/admin"),
        ("https://api.example.com/v1/..%2Fadmin", "/admin"),
        ("https://api.example.com/v1/..%5cadmin", "/admin"),
        ("https://api.example.com/v1\\..\\admin", "/admin"),
        ("https://api.example.com/v1/./x/.", "/v1/x/"),
        ("https://api.example.com//v1///x", "/v1/x"),
        ("https://api.example.com/v1/../../../../etc", "/etc"),
        ("https://api.example.com/%76%31/x", "/v1/x"),
        ("https://api.example.com/v1/a%3fb", "/v1/a%3Fb"),
        ("https://api.example.com", "/"),
        ("https://api.example.com/v1/", "/v1/"),
    ],
)
def test_paths_are_read_as_a_server_would_read_them(url: str, path: str) -> None:
    assert destination(url).path == path


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/%252e%252e/admin",
        "https://api.example.com/v1/..%252fadmin",
        "https://api.example.com/v1/..;/admin",
        "https://api.example.com/v1/%2e%2e;x/admin",
    ],
)
def test_ambiguous_paths_are_refused(url: str) -> None:
    with pytest.raises(Blocked) as refused:
        destination(url)
    assert refused.value.reason == "malformed"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://[0:0:0:0:0:0:0:1]/", "::1"),
        ("http://LocalHost./", "localhost"),
        ("http://bücher.example/", "xn--bcher-kva.example"),
    ],
)
def test_hosts_are_read_as_a_resolver_would_read_them(url: str, host: str) -> None:
    assert destination(url).host == host


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://api.example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme"),
        ("//api.example.com/", "scheme"),
        ("https://user:pw@api.example.com/", "userinfo"),
        ("https://api.example.com@127.0.0.1/", "userinfo"),
        ("https://api.example.com\\@127.0.0.1/", "userinfo"),
        ("https://127.0.0.1:8007\\.example.com/", "malformed"),
        ("https://api.example.com:0/", "malformed"),
        ("https://api.example.com:99999/", "malformed"),
        ("https://1.2.3.4.5/", "malformed"),
        ("https://[fe80::1%25eth0]/", "malformed"),
        ("https://exa mple.com/", "malformed"),
        ("https://api.example.com/\r\nHost: evil", "malformed"),
        ("https://", "malformed"),
    ],
)
def test_what_no_agent_may_call_is_refused_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(Blocked) as refused:
        destination(url)
    assert refused.value.reason == reason


def test_the_canonical_url_is_what_gets_sent() -> None:
    assert destination("HTTPS://API.example.com:443/v1/%2e%2e/v1/x?q=1#frag").url == (
        "https://api.example.com/v1/x?q=1"
    )
    assert destination("http://[::1]:8080/a").url == "http://[::1]:8080/a"
    assert destination("http://[::1]:8080/a").endpoint == "[::1]:8080"


@pytest.mark.parametrize(
    ("url", "admitted"),
    [
        ("https://api.example.com/v1/things", True),
        ("https://api.example.com/v1", True),
        ("https://api.example.com/v1/", True),
        ("https://API.example.com./v1/x", True),
        ("https://api.example.com:443/v1/x", True),
        ("https://api.example.com/v10", False),
        ("https://api.example.com/v1x/things", False),
        ("https://api.example.com/v1/../admin", False),
        ("https://api.example.com/v1/%2e%2e/admin", False),
        ("https://api.example.com/v1/..%2fadmin", False),
        ("https://api.example.com/admin", False),
        ("http://api.example.com/v1/x", False),
        ("https://api.example.com:8443/v1/x", False),
        ("https://api.example.com.evil.test/v1/x", False),
        ("https://evil.test/v1/x", False),
    ],
)
def test_a_prefix_admits_its_own_origin_under_its_path_by_whole_segments(
    url: str, admitted: bool
) -> None:
    policy = EgressPolicy.parse([BASE])
    if admitted:
        assert policy.permit(url).host == "api.example.com"
    else:
        with pytest.raises(Blocked) as refused:
            policy.permit(url)
        assert refused.value.reason == "not_allowed"


def test_without_a_list_nothing_is_allowed_and_the_error_names_the_setting() -> None:
    with pytest.raises(Blocked, match="EGRESS_ALLOWED_URLS") as refused:
        EgressPolicy().permit(BASE)
    assert refused.value.reason == "not_allowed"
    assert "empty" in refused.value.message


def test_a_prefix_without_a_path_admits_every_path_of_its_origin() -> None:
    policy = EgressPolicy.parse(["https://api.example.com"])
    assert policy.permit("https://api.example.com/anything/at/all").path == "/anything/at/all"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a00:1::", "private"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "Teredo"),
        ("100::1", "discard"),
    ],
)
def test_special_purpose_addresses_are_refused_by_name(address: str, why: str) -> None:
    reason = refusal(address)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "::ffff:8.8.8.8", "2606:4700::1111"],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_a_listed_literal_private_address_needs_its_exact_endpoint_named() -> None:
    listed = ["http://127.0.0.1:8007/", "http://[::1]:8007/", "http://10.0.0.5:80/"]
    closed = EgressPolicy.parse(listed)
    with pytest.raises(Blocked) as refused:
        closed.permit("http://127.0.0.1:8007/orders")
    assert refused.value.reason == "private_address"
    assert "EGRESS_ALLOWED_PRIVATE names 127.0.0.1:8007" in refused.value.message

    opened = EgressPolicy.parse(listed, ["127.0.0.1:8007", "[::1]:8007", "10.0.0.5:80"])
    assert opened.permit("http://127.1:8007/orders").endpoint == "127.0.0.1:8007"
    assert opened.permit("http://[::1]:8007/").endpoint == "[::1]:8007"
    assert opened.permit("http://10.0.0.5/x").endpoint == "10.0.0.5:80"
    with pytest.raises(Blocked):
        EgressPolicy.parse(["http://127.0.0.1:8008/"], ["127.0.0.1:8007"]).permit(
            "http://127.0.0.1:8008/"
        )


def test_a_resolved_name_is_judged_by_its_addresses_unless_its_endpoint_is_named() -> None:
    target = destination("http://upstream.test:8007/")
    closed = EgressPolicy.parse(["http://upstream.test:8007/"])
    closed.check_addresses(target, ["93.184.216.34"])
    with pytest.raises(Blocked) as refused:
        closed.check_addresses(target, ["93.184.216.34", "127.0.0.1"])
    assert refused.value.reason == "private_address"
    assert "127.0.0.1, loopback" in refused.value.message
    named = EgressPolicy.parse([], ["upstream.test:8007"])
    named.check_addresses(target, ["127.0.0.1"])
    other_port = destination("http://upstream.test:8008/")
    with pytest.raises(Blocked):
        named.check_addresses(other_port, ["127.0.0.1"])


@pytest.mark.parametrize(
    ("urls", "private", "named"),
    [
        (["api.example.com/v1"], [], "EGRESS_ALLOWED_URLS"),
        (["ftp://api.example.com/"], [], "EGRESS_ALLOWED_URLS"),
        (["https://api.example.com/v1?key=1"], [], "EGRESS_ALLOWED_URLS"),
        (["https://api.example.com/v1#x"], [], "EGRESS_ALLOWED_URLS"),
        (["https://u:p@api.example.com/"], [], "EGRESS_ALLOWED_URLS"),
        ([], ["127.0.0.1"], "EGRESS_ALLOWED_PRIVATE"),
        ([], ["http://127.0.0.1:8007"], "EGRESS_ALLOWED_PRIVATE"),
        ([], ["127.0.0.1:8007/x"], "EGRESS_ALLOWED_PRIVATE"),
        ([], ["10.0.0.0/8"], "EGRESS_ALLOWED_PRIVATE"),
        ([], ["*:8007"], "EGRESS_ALLOWED_PRIVATE"),
    ],
)
def test_bad_settings_fail_naming_the_setting_and_the_entry(
    urls: list[str], private: list[str], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        EgressPolicy.parse(urls, private)
