"""The edge's rules as plain functions: tokens and scopes, Host and Origin, JSON bodies; and the
gate in front of the real app in process (no broker: every request here is refused before a
route would ask one)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from vsm.mcp_gateway.access import (
    MIN_TOKEN_CHARS,
    Tokens,
    bearer_token,
    parse_tokens,
    required_scope,
)
from vsm.mcp_gateway.app import create_app
from vsm.mcp_gateway.crosssite import Refusal, SameSite, media_refusal, pattern
from vsm.mcp_gateway.settings import Settings

OPERATE = "operate-0123456789abcdef"
READ = "read-0123456789abcdef"


def status(refusal: Refusal | None) -> int | None:
    return refusal.status if refusal else None


def test_a_token_grants_its_scope_and_operate_wins() -> None:
    tokens = Tokens.of(operate=[OPERATE, "second-operate-token"], read=[READ, OPERATE])
    assert tokens.scope_of(OPERATE) == "operate"
    assert tokens.scope_of("second-operate-token") == "operate"
    assert tokens.scope_of(READ) == "read"
    for wrong in ("", OPERATE[:-1], OPERATE + "x", OPERATE.upper(), "é" * 20):
        assert tokens.scope_of(wrong) is None
    assert not Tokens.of().configured
    assert Tokens.of().scope_of(OPERATE) is None


def test_tokens_come_from_three_settings_and_mcp_auth_token_operates() -> None:
    settings = Settings(
        mcp_auth_token="legacy-mcp-token-1234",
        vsm_operate_tokens=f" {OPERATE} ,another-operate-token,",
        vsm_read_tokens=READ,
    )
    tokens = Tokens.from_settings(settings)
    assert tokens.scope_of("legacy-mcp-token-1234") == "operate"
    assert tokens.scope_of("another-operate-token") == "operate"
    assert tokens.scope_of(OPERATE) == "operate"
    assert tokens.scope_of(READ) == "read"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("vsm_read_tokens", f"{READ},qzv9"),
        ("vsm_operate_tokens", "q" * (MIN_TOKEN_CHARS - 1)),
        ("mcp_auth_token", "qzvtiny"),
    ],
)
def test_a_short_token_stops_start_up_naming_its_setting_never_its_text(
    setting: str, value: str
) -> None:
    with pytest.raises(ValueError, match=setting.upper()) as refused:
        Tokens.from_settings(Settings(**{setting: value}))
    assert f"shorter than {MIN_TOKEN_CHARS}" in str(refused.value)
    assert value.rsplit(",", 1)[-1] not in str(refused.value)


def test_a_token_a_header_cannot_carry_is_refused() -> None:
    with pytest.raises(ValueError, match="VSM_READ_TOKENS: token 1 has a character"):
        parse_tokens("VSM_READ_TOKENS", "with a space in the token")
    with pytest.raises(ValueError, match="token 2"):
        parse_tokens("VSM_READ_TOKENS", f"{READ},ünïcödé-token-12345")
    assert parse_tokens("MCP_AUTH_TOKEN", "", several=False) == []


def test_the_bearer_token_of_an_authorization_header() -> None:
    assert bearer_token(f"Bearer {OPERATE}") == OPERATE
    assert bearer_token(f"bearer   {OPERATE} ") == OPERATE
    for value in (None, "", "Bearer", "Bearer ", f"Basic {OPERATE}", OPERATE):
        assert bearer_token(value) is None


def test_reads_need_read_everything_else_operate_unless_the_route_says() -> None:
    assert required_scope("GET", {}) == "read"
    assert required_scope("HEAD", {}) == "read"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert required_scope(method, {}) == "operate"
    assert required_scope("POST", {"scope": "read"}) == "read"
    assert required_scope("GET", {"scope": "nonsense"}) == "read"


def test_allowed_hosts_and_origins_with_any_port_and_the_public_host() -> None:
    site = SameSite.from_settings(
        Settings(vsm_allowed_hosts=["localhost:*", "mcp-gateway"], vsm_public_host="vsm.example")
    )
    for host in ("localhost:8000", "LOCALHOST:1", "mcp-gateway", "vsm.example", "vsm.example:443"):
        assert site.refusal({"host": host}) is None, host
    for host in (
        "",
        "localhost",
        "localhost:x",
        "localhost.evil:80",
        "evil.example",
        "a@localhost:1",
    ):
        assert status(site.refusal({"host": host})) == 421, host
    for origin in (
        "https://evil.example",
        "null",
        "http://localhost.evil:1",
        "https://vsm.example.evil",
    ):
        assert status(site.refusal({"host": "localhost:1", "origin": origin})) == 403, origin
    assert site.refusal({"host": "localhost:1", "origin": "https://vsm.example"}) is None
    assert not re.compile(pattern([])).fullmatch("anything")


def test_the_old_mcp_names_of_the_host_settings_still_work() -> None:
    settings = Settings(mcp_allowed_hosts=["old.example"], mcp_public_host="pub.example")
    assert settings.allowed_hosts == ["old.example"]
    assert settings.public_host == "pub.example"


@pytest.mark.parametrize(
    ("method", "headers", "reads_body", "expected"),
    [
        ("POST", {"content-type": "application/json"}, True, None),
        ("PUT", {"content-type": "Application/JSON; charset=utf-8"}, True, None),
        ("POST", {"content-type": "text/plain", "content-length": "2"}, True, 415),
        ("POST", {"content-type": "application/x-www-form-urlencoded"}, True, 415),
        ("POST", {"content-type": "application/jsonp"}, True, 415),
        ("POST", {}, True, 415),  # a route with a body, none declared
        ("POST", {}, False, None),  # a route without a body, nothing sent
        ("POST", {"content-type": "text/plain"}, False, 415),
        ("DELETE", {"content-length": "5"}, False, 415),
        ("DELETE", {}, False, None),
        ("GET", {"content-type": "text/plain"}, False, None),
    ],
)
def test_a_mutation_sends_json_or_nothing(
    method: str, headers: dict[str, str], reads_body: bool, expected: int | None
) -> None:
    assert status(media_refusal(method, headers, reads_body)) == expected


@pytest.fixture
async def app_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(vsm_operate_tokens=OPERATE, vsm_read_tokens=READ, vsm_namespace="unit")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        yield client


async def test_the_gate_answers_in_order_before_any_route_runs(
    app_client: httpx.AsyncClient,
) -> None:
    operate = {"Authorization": f"Bearer {OPERATE}"}
    read = {"Authorization": f"Bearer {READ}"}
    spawn = {"type": "worker"}
    assert (await app_client.get("/healthz", headers={"Host": "10.0.0.7:8080"})).status_code == 200
    answers = [
        await app_client.post("/api/vsm/agents", headers={**operate, "Host": "evil.example"}),
        await app_client.post("/api/vsm/agents", headers={**operate, "Origin": "http://evil"}),
        await app_client.post("/api/vsm/agents", json=spawn),
        await app_client.post("/api/vsm/agents", headers=read, json=spawn),
        await app_client.post("/api/vsm/agents", headers=operate, content=b"{}"),
    ]
    assert [a.status_code for a in answers] == [421, 403, 401, 403, 415]
    assert [a.json()["error"] for a in answers] == [
        "misdirected_request",
        "origin_not_allowed",
        "unauthorized",
        "forbidden",
        "unsupported_media_type",
    ]
    assert answers[2].headers["www-authenticate"] == 'Bearer realm="vsm", error="invalid_token"'
    assert 'error="insufficient_scope"' in answers[3].headers["www-authenticate"]


async def test_without_any_token_configured_everything_but_the_probes_is_closed() -> None:
    transport = httpx.ASGITransport(app=create_app(Settings(vsm_namespace="unit")))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1") as client:
        assert (await client.get("/healthz")).status_code == 200
        for path in ("/api/vsm/status", "/mcp", "/metrics", "/schema/openapi.json"):
            closed = await client.get(path, headers={"Authorization": f"Bearer {OPERATE}"})
            assert closed.status_code == 503, path
            assert "MCP_AUTH_TOKEN" in closed.json()["message"]
