"""The bearer tokens of a launched system's gateway, and HTTP clients that send them.

`launch()` gives every system these two (through `TOKEN_ENV`), so a test talks to REST or MCP
as an operator would: with the operate token unless it means to test another.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from scripts.localrun import LocalSystem

OPERATE_TOKEN = f"test-operate-{secrets.token_urlsafe(18)}"
READ_TOKEN = f"test-read-{secrets.token_urlsafe(18)}"
TOKEN_ENV = {"VSM_OPERATE_TOKENS": OPERATE_TOKEN, "VSM_READ_TOKENS": READ_TOKEN}


def bearer(token: str = OPERATE_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gateway_client(
    system: LocalSystem, token: str = OPERATE_TOKEN, **options: Any
) -> httpx.AsyncClient:
    """An async client of the system's gateway that sends `token` with every request."""
    return httpx.AsyncClient(base_url=system.url("mcp-gateway"), headers=bearer(token), **options)


@asynccontextmanager
async def mcp_session(url: str, token: str = OPERATE_TOKEN) -> AsyncIterator[ClientSession]:
    """An initialized session of the official MCP SDK client at `url`, sending `token`."""
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session
