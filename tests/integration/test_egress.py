"""Outbound HTTP end to end: operations and the gateway on the real broker, agents spawned
and commanded over REST, listeners on this machine's loopback only.

The operator allowed `allowed`'s `/v1/` and named its endpoint; it listed `http://localhost:
<stranger's port>/` without naming that endpoint; `stranger` itself it never mentioned. A
spawn outside the list is refused at once (422, naming the field); a listed name that
resolves to loopback is spawned, since a name is judged when it is resolved, and each of its
calls fails `destination_not_allowed` without a connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.cleanup import delete_namespace
from tests.support.listener import Listener, Reply
from tests.support.system import launch
from vsm.contract.operations import earlier_command_queue, results_exchange

pytestmark = pytest.mark.integration

SPAWNED: list[str] = []


@pytest.fixture(scope="module")
def allowed() -> Iterator[Listener]:
    with Listener() as running:
        yield running


@pytest.fixture(scope="module")
def stranger() -> Iterator[Listener]:
    with Listener() as running:
        yield running


def port(listener: Listener) -> int:
    return int(listener.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def system(
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    allowed: Listener,
    stranger: Listener,
) -> Iterator[LocalSystem]:
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        services=("operations", "mcp-gateway"),
        EGRESS_ALLOWED_URLS=json.dumps(
            [f"{allowed.url}/v1/", f"http://localhost:{port(stranger)}/"]
        ),
        EGRESS_ALLOWED_PRIVATE=json.dumps([f"127.0.0.1:{port(allowed)}"]),
        EGRESS_MAX_BODY_BYTES="4096",
    )
    yield running
    running.stop()
    agent_queues = [earlier_command_queue(a) for a in SPAWNED]
    queues = [name for q in agent_queues for name in (q.name, q.dead_letter_queue)]
    exchanges = [results_exchange(a).name for a in SPAWNED]
    asyncio.run(
        delete_namespace(amqp_url, running.env["VSM_NAMESPACE"], queues=queues, exchanges=exchanges)
    )


async def spawn(gateway: httpx.AsyncClient, kind: str, **config: Any) -> httpx.Response:
    answer = await gateway.post("/api/vsm/agents", json={"type": kind, "config": config})
    if answer.status_code == 201:
        SPAWNED.append(answer.json()["agent_id"])
    return answer


async def call(gateway: httpx.AsyncClient, agent_id: str, url: str) -> dict[str, Any]:
    answer = await gateway.post(
        f"/api/vsm/agents/{agent_id}/command",
        json={"type": "call", "data": {"url": url}, "timeout_s": 20},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:{stranger}/",
        "http://127.1:{stranger}/",
        "http://[::ffff:127.0.0.1]:{stranger}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:{allowed}/admin/",
        "http://127.0.0.1:{allowed}/v10/",
        "http://127.0.0.1:{allowed}/v1/%2e%2e/admin/",
    ],
)
async def test_a_spawn_outside_the_operators_list_is_refused_naming_the_field(
    gateway: httpx.AsyncClient, allowed: Listener, stranger: Listener, base: str
) -> None:
    url = base.format(allowed=port(allowed), stranger=port(stranger))
    answer = await spawn(gateway, "api", base_urls=[f"{allowed.url}/v1/", url])
    assert answer.status_code == 422, answer.text
    refusal = answer.json()
    assert refusal["error"] == "invalid_config"
    [problem] = refusal["details"]["errors"]
    assert problem["field"] == "config.base_urls.1"
    assert problem["code"] == "destination_not_allowed"
    assert "EGRESS_ALLOWED_URLS" in problem["message"]
    sensor = await spawn(gateway, "sensor", source="http", url=url)
    assert sensor.status_code == 422
    assert sensor.json()["details"]["errors"][0]["field"] == "config.url"
    assert stranger.connections == allowed.connections == 0


async def test_a_named_endpoint_works_and_no_call_leaves_its_base_path(
    gateway: httpx.AsyncClient, allowed: Listener
) -> None:
    answer = await spawn(gateway, "api", base_urls=[f"{allowed.url}/v1/"], retries=0)
    assert answer.status_code == 201, answer.text
    agent_id = answer.json()["agent_id"]

    done = await call(gateway, agent_id, "things")
    assert (done["status"], done["result"]["status_code"]) == ("ok", 200)
    for escape in ("../admin", "%2e%2e/admin", "..%2fadmin", "..\\admin", f"{allowed.url}/"):
        refused = await call(gateway, agent_id, escape)
        assert refused["status"] == "error"
        assert refused["error"]["code"] == "destination_not_allowed"
    assert allowed.paths == ["/v1/things"]

    allowed.default = Reply(body={"blob": "x" * 10_000})
    cut = await call(gateway, agent_id, "big")
    assert cut["result"]["truncated"] is True
    assert len(cut["result"]["body"]) == 4096


async def test_a_listed_name_that_resolves_to_loopback_is_never_connected_to(
    gateway: httpx.AsyncClient, system: LocalSystem, stranger: Listener
) -> None:
    answer = await spawn(gateway, "api", base_urls=[f"http://localhost:{port(stranger)}/"])
    assert answer.status_code == 201, answer.text
    refused = await call(gateway, answer.json()["agent_id"], "x")
    assert refused["status"] == "error"
    assert refused["error"]["code"] == "destination_not_allowed"
    assert refused["error"]["details"] == {"reason": "private_address"}
    assert "EGRESS_ALLOWED_PRIVATE" in refused["error"]["message"]
    assert stranger.connections == 0

    async with httpx.AsyncClient(base_url=system.url("operations"), timeout=10) as operations:
        metrics = (await operations.get("/metrics")).text
    assert 'vsm_egress_refused_total{agent_type="api",reason="private_address"} 1.0' in metrics
