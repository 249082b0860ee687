"""The MCP gate in process: the rate limit per client; the SDK transport is not involved."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from vsm.mcp_gateway.mcp.security import McpGate, RateLimiter


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


async def behind(per_minute: int = 100) -> httpx.AsyncClient:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})

    gate = McpGate(inner, RateLimiter(per_minute), clock=lambda: 0.0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://t")


async def test_the_gate_rate_limits_with_retry_after() -> None:
    async with await behind(per_minute=2) as client:
        codes = [
            (await client.post("/", headers={"Authorization": "Bearer t"})).status_code
            for _ in range(3)
        ]
        last = await client.post("/", headers={"Authorization": "Bearer t"})
    assert codes == [200, 200, 429]
    assert last.headers["retry-after"] == "60"
