"""The edge's gate on the running gateway, with plain HTTP clients: every route but the probes
wants a token, a read token cannot change state, mutations take JSON only, and neither a
foreign Origin nor a foreign Host gets through (the cross-site attack of a web page included).

Every route is enumerated from the gateway app's own routes, so a new one cannot be forgotten.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.tokens import OPERATE_TOKEN, READ_TOKEN, bearer
from vsm.mcp_gateway.access import OPEN_PATHS, SESSION_ROUTE
from vsm.mcp_gateway.app import create_app
from vsm.mcp_gateway.settings import Settings

pytestmark = pytest.mark.integration

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
GATE = {401, 403, 415, 421, 503}
ATTACK = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
"""What a web page can send without a CORS preflight (a "simple request")."""
SPAWN = b'{"type": "worker", "config": {}}'


def by_session(route: Any) -> bool:
    """A route that admits its callers by the console's session instead of a bearer token."""
    handlers = [  # the OPTIONS handler Litestar adds to every path is the CORS layer's
        h for h in getattr(route, "route_handlers", None) or [] if h.http_methods != {"OPTIONS"}
    ]
    return bool(handlers) and all(h.opt.get("access") == SESSION_ROUTE["access"] for h in handlers)


def every_route(*, session: bool = False) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every route of the gateway app (the
    OpenAPI document's, those kept out of it, MCP, the metrics, the schema), probes aside;
    with `session`, those the console's session admits instead (tests/console checks them)."""
    app = create_app(Settings(vsm_operate_tokens="enumerating-routes-only"))
    found = []
    for route in app.routes:
        if route.path in OPEN_PATHS or by_session(route) != session:
            continue
        path = PARAMETER.sub(lambda m: "1" if m.group(2) == "int" else "x", route.path)
        # /mcp is a mount (every method); its GET would open an event stream, its POST says all.
        for method in sorted(route.methods or {"POST"}):
            found.append((method, path))
    return found


ROUTES = every_route()


def test_only_the_console_is_admitted_by_a_session_instead_of_a_token() -> None:
    paths = {path for _, path in every_route(session=True)}
    assert "/console" in paths
    assert all(path == "/" or path.startswith("/console") for path in paths), paths


def test_the_enumeration_sees_every_kind_of_route() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/api/vsm/agents", "/api/vsm/algedonic/x", "/mcp", "/metrics", "/schema"} <= paths
    assert {m for m, _ in ROUTES} >= {"GET", "POST", "PUT", "DELETE"}
    assert len(ROUTES) > 40


@pytest.fixture(scope="module")
def http(system: LocalSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.url("mcp-gateway"), timeout=30) as client:
        yield client


@pytest.fixture
async def raw(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.url("mcp-gateway"), timeout=30) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_a_valid_token_every_route_answers_401(
    http: httpx.Client, method: str, path: str
) -> None:
    for headers in (
        {},
        bearer("wrong-token-0123456789"),
        {"Authorization": f"Basic {OPERATE_TOKEN}"},
    ):
        refused = http.request(method, path, headers=headers)
        assert refused.status_code == 401, (method, path, refused.text)
        assert refused.headers["www-authenticate"].startswith('Bearer realm="vsm"')
        assert refused.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_read_token_reads_and_is_refused_every_mutation(
    http: httpx.Client, method: str, path: str
) -> None:
    answer = http.request(method, path, headers=bearer(READ_TOKEN), json={})
    if method in MUTATIONS and path != "/mcp":  # MCP decides per tool (test_mcp_gateway)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"] == "forbidden"
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    else:
        assert answer.status_code not in GATE, (method, path, answer.text)


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in ROUTES if m in MUTATIONS])
def test_a_mutation_refuses_a_body_that_is_not_json(
    http: httpx.Client, method: str, path: str
) -> None:
    operate = bearer(OPERATE_TOKEN)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        headers = {**operate, "Content-Type": content_type}
        refused = http.request(method, path, headers=headers, content=b'{"a": 1}')
        assert refused.status_code == 415, (method, path, content_type, refused.text)
        assert refused.json()["error"] == "unsupported_media_type"


def test_a_route_with_a_body_refuses_a_request_without_a_content_type(http: httpx.Client) -> None:
    for content in (b"", SPAWN):
        refused = http.post("/api/vsm/agents", headers=bearer(OPERATE_TOKEN), content=content)
        assert refused.status_code == 415, refused.text
    # A mutation that takes no body needs none: S4's scan runs with the token alone.
    assert http.post("/api/vsm/system/4/scan", headers=bearer(OPERATE_TOKEN)).status_code == 200


async def agents(raw: httpx.AsyncClient) -> set[str]:
    listed = await raw.get("/api/vsm/agents", headers=bearer(READ_TOKEN))
    assert listed.status_code == 200, listed.text
    return {a["agent_id"] for a in listed.json()}


async def test_the_cross_site_attack_spawns_nothing(raw: httpx.AsyncClient) -> None:
    before = await agents(raw)
    tries = [
        # The page's request as the issue found it: text/plain, its Origin, a rebound Host.
        {**ATTACK, "Host": "evil.example:8000"},
        {**ATTACK, "Host": "evil.example:8000", **bearer(OPERATE_TOKEN)},
        # Each defence alone: the Origin, then the content type.
        {**ATTACK, **bearer(OPERATE_TOKEN), "Content-Type": "application/json"},
        {**bearer(OPERATE_TOKEN), "Content-Type": "text/plain"},
    ]
    statuses = [
        (await raw.post("/api/vsm/agents", headers=h, content=SPAWN)).status_code for h in tries
    ]
    assert statuses == [421, 421, 403, 415]
    # The gate is no wall: the same request made properly reaches S1, which judges the type.
    proper = {**bearer(OPERATE_TOKEN), "Content-Type": "application/json"}
    unknown = b'{"type": "no-such-type", "config": {}}'
    assert (await raw.post("/api/vsm/agents", headers=proper, content=unknown)).status_code == 422
    assert await agents(raw) == before


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example"]
)
def test_a_foreign_origin_is_refused_on_reads_too(http: httpx.Client, origin: str) -> None:
    refused = http.get("/api/vsm/status", headers={**bearer(OPERATE_TOKEN), "Origin": origin})
    assert refused.status_code == 403
    assert refused.json()["error"] == "origin_not_allowed"
    allowed = {**bearer(OPERATE_TOKEN), "Origin": "http://localhost:6274"}
    assert http.get("/api/vsm/status", headers=allowed).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example:8000", "127.0.0.1"])
def test_a_foreign_host_is_refused_on_rest_and_mcp(http: httpx.Client, host: str) -> None:
    operate = bearer(OPERATE_TOKEN)
    for method, path in (("GET", "/api/vsm/status"), ("POST", "/mcp"), ("GET", "/metrics")):
        refused = http.request(method, path, headers={**operate, "Host": host}, json={})
        assert refused.status_code == 421, (method, path)
        assert refused.json()["error"] == "misdirected_request"
    in_cluster = http.get("/api/vsm/status", headers={**operate, "Host": "mcp-gateway:8000"})
    assert in_cluster.status_code == 200


def test_the_probes_answer_anyone(http: httpx.Client) -> None:
    kubelet = {"Host": "10.1.2.3:8080"}  # a kubelet's probe names the pod's address
    assert http.get("/healthz", headers=kubelet).status_code == 200
    assert http.get("/readyz", headers=kubelet).status_code == 200


def test_metrics_want_a_token_on_the_api_port_and_none_on_their_own(
    http: httpx.Client, system: LocalSystem
) -> None:
    assert http.get("/metrics").status_code == 401
    assert "vsm_" in http.get("/metrics", headers=bearer(READ_TOKEN)).text
    scraped = httpx.get(f"http://{system.scrape_address('mcp-gateway')}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert "vsm_amqp" in scraped.text
    elsewhere = httpx.get(f"http://{system.scrape_address('mcp-gateway')}/api/vsm/status")
    assert elsewhere.status_code == 404
