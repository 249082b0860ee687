"""Agent hosts on the real broker: a host process of its own (`python -m vsm.agent run`)
offering a type written on the SDK in a package of the test's own, and the system that
governs it: registration, placement, typed commands and their errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.hosts import Host, start_host
from tests.support.tokens import gateway_client

pytestmark = pytest.mark.integration

TYPES = ["tests.support.host_agents"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hosts")


@pytest.fixture(scope="module")
def host_a(system: LocalSystem, logs: Path) -> Iterator[Host]:
    host = start_host(system, "host-a", TYPES, logs)
    host.wait_ready()
    yield host
    host.stop()


@pytest.fixture
async def rest(system: LocalSystem, host_a: Host) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=40) as client:
        yield client


async def spawn(rest: httpx.AsyncClient, agent_type: str, **config: Any) -> dict[str, Any]:
    response = await rest.post("/api/vsm/agents", json={"type": agent_type, "config": config})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def command(
    rest: httpx.AsyncClient, agent_id: str, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    response = await rest.post(
        f"/api/vsm/agents/{agent_id}/command", json={"type": kind, "data": data}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_hosts_types_are_listed_with_their_schemas(rest: httpx.AsyncClient) -> None:
    types = {t["agent_type"]: t for t in (await rest.get("/api/vsm/agent-types")).json()}
    assert {"worker", "tally"} <= set(types)
    add = types["tally"]["commands"]["add"]
    assert add["input_schema"]["required"] == ["value"]
    assert "total" in add["output_schema"]["properties"]
    assert types["tally"]["config_schema"]["properties"]["start"]["minimum"] == 0


async def test_an_agent_of_a_hosted_type_runs_on_the_host(rest: httpx.AsyncClient) -> None:
    agent = await spawn(rest, "tally", start=5)
    assert agent["agent_type"] == "tally"
    answer = await command(rest, agent["agent_id"], "add", {"value": 3})
    assert answer["status"] == "ok", answer
    assert answer["result"] == {"total": 8, "host": "host-a"}


async def test_a_hosted_types_errors_keep_their_codes(rest: httpx.AsyncClient) -> None:
    agent_id = (await spawn(rest, "tally"))["agent_id"]
    invalid = await command(rest, agent_id, "add", {"value": -1})
    assert invalid["error"]["code"] == "invalid_input"
    assert [e["field"] for e in invalid["error"]["details"]["errors"]] == ["data.value"]
    failed = await command(rest, agent_id, "fail", {})
    assert failed["error"]["code"] == "agent_error"
    assert "hunter2" not in str(failed)
    refused = await command(rest, agent_id, "refuse", {})
    assert refused["error"]["code"] == "not_today"
    wrong = await command(rest, agent_id, "wrong", {})
    assert wrong["error"]["code"] == "invalid_output"
    unknown = await command(rest, agent_id, "multiply", {})
    assert unknown["error"]["code"] == "capability_not_supported"


async def test_a_config_the_types_schema_refuses_is_refused_at_spawn(
    rest: httpx.AsyncClient,
) -> None:
    response = await rest.post("/api/vsm/agents", json={"type": "tally", "config": {"start": -2}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_config"
    assert [e["field"] for e in body["details"]["errors"]] == ["config.start"]
