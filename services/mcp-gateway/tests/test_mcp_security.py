"""The MCP gate in process: token, rate limit, origins; the SDK transport is not involved."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from vsm.mcp_gateway.mcp_security import (
    McpGate,
    RateLimiter,
    origin_pattern,
    transport_security,
)


def test_the_rate_limiter_allows_n_a_minute_per_client_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.retry_after("a", t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert limiter.retry_after("a", 3.0) == pytest.approx(57.0)
    assert limiter.retry_after("b", 3.0) is None  # another client has its own window
    assert limiter.retry_after("a", 60.5) is None  # the first request has left the window


def test_the_rate_limiter_forgets_idle_clients_when_full() -> None:
    limiter = RateLimiter(per_minute=1, max_clients=2)
    limiter.retry_after("a", 0.0)
    limiter.retry_after("b", 0.0)
    assert limiter.retry_after("c", 120.0) is None
    assert limiter.retry_after("a", 120.0) is None


def test_transport_security_adds_the_public_host_over_https() -> None:
    settings = transport_security(["mcp-gateway"], ["http://localhost:*"], "vsm.example.org")
    assert settings.enable_dns_rebinding_protection
    assert settings.allowed_hosts == ["mcp-gateway", "vsm.example.org", "vsm.example.org:*"]
    assert "https://vsm.example.org" in settings.allowed_origins


def test_the_cors_pattern_matches_what_the_sdk_allows() -> None:
    pattern = re.compile(origin_pattern(["http://localhost:*", "https://vsm.example.org"]))
    assert pattern.match("http://localhost:6274")
    assert pattern.match("https://vsm.example.org")
    assert not pattern.match("https://vsm.example.org.evil.test")
    assert not pattern.match("http://localhost.evil.test:80")
    assert not re.compile(origin_pattern([])).match("http://localhost:1")


async def behind(gate_token: str | None, per_minute: int = 100) -> httpx.AsyncClient:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})

    gate = McpGate(inner, gate_token, RateLimiter(per_minute), clock=lambda: 0.0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://t")


async def test_the_gate_wants_the_exact_bearer_token() -> None:
    async with await behind("s3cret") as client:
        for headers in ({}, {"Authorization": "Bearer s3cre"}, {"Authorization": "Basic s3cret"}):
            refused = await client.post("/", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer ")
        passed = await client.post("/", headers={"Authorization": "bearer s3cret"})
        assert passed.status_code == 200
        assert passed.text == "inner"


async def test_without_a_token_configured_the_gate_is_closed() -> None:
    async with await behind(None) as client:
        response = await client.post("/", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert response.json()["error"] == "mcp_disabled"


async def test_the_gate_rate_limits_with_retry_after() -> None:
    async with await behind("t", per_minute=2) as client:
        codes = [
            (await client.post("/", headers={"Authorization": "Bearer t"})).status_code
            for _ in range(3)
        ]
        last = await client.post("/", headers={"Authorization": "Bearer t"})
    assert codes == [200, 200, 429]
    assert last.headers["retry-after"] == "60"
