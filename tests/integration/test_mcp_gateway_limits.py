"""The gate on a lone mcp-gateway: MCP's rate limit per client, everything closed without a
token configured, and no start-up with a token too short.

Only the gateway runs here (the gate answers before any system is asked), each with its own
settings, so these limits never disturb the shared system of the other MCP tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.cleanup import new_namespace
from tests.support.system import free_port, shut_down

pytestmark = pytest.mark.integration

TOKEN = "limits-test-token"
RATE_LIMIT = 5
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
HEADERS = {"Accept": "application/json, text/event-stream"}


def lone_gateway(amqp_url: str, log_dir: Path, **env: str) -> LocalSystem:
    system = LocalSystem(
        env={"AMQP_URL": amqp_url, "VSM_NAMESPACE": new_namespace(), "LOG_FORMAT": "json", **env},
        log_dir=log_dir,
        ports={"mcp-gateway": free_port()},
    )
    system.start(["mcp-gateway"])
    try:
        system.wait_ready(timeout=60)
    except Exception:
        system.stop()
        raise
    return system


@pytest.fixture(scope="module")
def limited(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    system = lone_gateway(
        amqp_url,
        tmp_path_factory.mktemp("limited"),
        MCP_AUTH_TOKEN=TOKEN,
        MCP_RATE_LIMIT=str(RATE_LIMIT),
    )
    yield system
    asyncio.run(shut_down(system, amqp_url))


@pytest.fixture(scope="module")
def tokenless(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    system = lone_gateway(amqp_url, tmp_path_factory.mktemp("tokenless"), MCP_AUTH_TOKEN="")
    yield system
    asyncio.run(shut_down(system, amqp_url))


@pytest.fixture
async def client(limited: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited.url("mcp-gateway"), timeout=10) as http:
        yield http


async def test_past_the_rate_limit_a_client_gets_429_and_rest_is_unaffected(
    client: httpx.AsyncClient,
) -> None:
    auth = {**HEADERS, "Authorization": f"Bearer {TOKEN}"}
    codes = [(await client.post("/mcp", json=PING, headers=auth)).status_code for _ in range(8)]
    assert codes[:RATE_LIMIT] == [200] * RATE_LIMIT
    assert set(codes[RATE_LIMIT:]) == {429}
    limited = await client.post("/mcp", json=PING, headers=auth)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"] == "rate_limited"
    assert (await client.get("/healthz")).status_code == 200
    schema = await client.get("/schema/openapi.json", headers=auth)
    assert schema.status_code == 200


async def test_without_a_configured_token_mcp_and_rest_are_closed_with_503(
    tokenless: LocalSystem,
) -> None:
    async with httpx.AsyncClient(base_url=tokenless.url("mcp-gateway"), timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer anything-at-all-1234"}):
            for method, path in (("POST", "/mcp"), ("GET", "/api/vsm/status"), ("GET", "/metrics")):
                response = await http.request(
                    method, path, json=PING, headers={**HEADERS, **headers}
                )
                assert response.status_code == 503, (method, path)
                assert response.json()["error"] == "no_token_configured"
                assert "MCP_AUTH_TOKEN" in response.json()["message"]
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200


def test_a_token_shorter_than_16_characters_stops_start_up(amqp_url: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="mcp-gateway exited with 1"):
        lone_gateway(amqp_url, tmp_path, VSM_READ_TOKENS=f"{TOKEN},short-token")
    log = (tmp_path / "mcp-gateway.log").read_text()
    assert "VSM_READ_TOKENS: token 2 is shorter than 16 characters" in log
    assert "short-token" not in log
