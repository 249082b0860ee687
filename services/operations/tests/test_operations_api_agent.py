"""The api agent against a real local HTTP server: allow-list, retries, mapping, errors."""

from collections.abc import AsyncIterator

import httpx
import pytest

from vsm.operations.agents.api import ApiAgent, ApiConfig, allowed
from vsm.operations.agents.base import CommandFailed

from .local_http import serve


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def test_allowed_means_same_origin_and_under_the_path() -> None:
    bases = ["http://127.0.0.1:9/api/"]
    assert allowed("http://127.0.0.1:9/api/x?y=1", bases)
    assert not allowed("http://127.0.0.1:9/apix", bases)
    assert not allowed("http://127.0.0.1:10/api/x", bases)
    assert not allowed("https://127.0.0.1:9/api/x", bases)
    assert not allowed("http://evil.example/api/x", bases)


async def test_a_call_retries_transient_failures_and_maps_the_response(
    http: httpx.AsyncClient,
) -> None:
    with serve() as (url, script):
        script.replies.extend([(503, {}), (200, {"items": [{"name": "a"}], "total": 1})])
        agent = ApiAgent(
            ApiConfig(base_urls=[f"{url}/v1/"], backoff_s=0, mapping={"first": "items.0.name"}),
            http,
        )
        result = await agent.execute("call", {"url": "things", "params": {"q": "x"}})
    assert result["status_code"] == 200
    assert result["mapped"] == {"first": "a"}
    assert script.paths == ["/v1/things?q=x", "/v1/things?q=x"]


async def test_urls_outside_the_allow_list_are_refused_without_a_request(
    http: httpx.AsyncClient,
) -> None:
    with serve() as (url, script):
        agent = ApiAgent(ApiConfig(base_urls=[f"{url}/v1/"]), http)
        with pytest.raises(CommandFailed) as refused:
            await agent.execute("call", {"url": f"{url}/admin"})
    assert refused.value.code == "url_not_allowed"
    assert script.paths == []


async def test_an_upstream_error_is_an_error_with_the_body(http: httpx.AsyncClient) -> None:
    with serve() as (url, script):
        script.default = (404, {"detail": "nope"})
        agent = ApiAgent(ApiConfig(base_urls=[url], retries=0), http)
        with pytest.raises(CommandFailed) as failed:
            await agent.execute("call", {"url": "/x"})
    assert failed.value.code == "upstream_error"
    assert failed.value.details["body"] == {"detail": "nope"}


async def test_an_unreachable_upstream_is_reported(http: httpx.AsyncClient) -> None:
    with serve() as (url, _):
        pass  # the port is free again
    agent = ApiAgent(ApiConfig(base_urls=[url], retries=1, backoff_s=0), http)
    with pytest.raises(CommandFailed) as failed:
        await agent.execute("call", {"url": "/x"})
    assert failed.value.code == "upstream_unreachable"
