"""Agent types as plugins, on the real broker: operations runs the SDK types installed
packages publish through the `vsm.agent_types` entry points (here the examples' package, and
a broken package it must skip), a host may not take their names, and a command to an agent
whose hosts are all gone answers `no_host` instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.support.hosts import ROOT, start_host
from tests.support.polling import eventually
from tests.support.tokens import gateway_client

pytestmark = pytest.mark.integration

CLASHING = '''
from pydantic import BaseModel

from vsm.agent import Agent, NoConfig, command


class Text(BaseModel):
    text: str


class CsvSummary(Agent[NoConfig]):
    """Another type under the name operations runs."""

    name = "csv-summary"

    @command
    async def summarise(self, data: Text) -> Text:
        """Echo."""
        return data
'''


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A broken installed package on the services' path: its entry point names a module
    that does not exist."""
    site = tmp_path_factory.mktemp("site")
    info = site / "broken_agents-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-agents\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vsm.agent_types]\nghost = broken_agents.missing:Ghost\n"
    )
    return site


@pytest.fixture(scope="module")
def system_env(plugins: Path) -> dict[str, str]:
    return {"AGENT_TYPE_ENTRY_POINTS": "true", "PYTHONPATH": f"{plugins}:{ROOT}"}


@pytest.fixture
async def rest(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=40) as client:
        yield client


async def spawn(rest: httpx.AsyncClient, agent_type: str, **config: Any) -> str:
    response = await rest.post("/api/vsm/agents", json={"type": agent_type, "config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


async def test_operations_runs_the_types_installed_packages_publish(
    rest: httpx.AsyncClient, system: LocalSystem
) -> None:
    types = {t["agent_type"]: t for t in (await rest.get("/api/vsm/agent-types")).json()}
    assert {"worker", "csv-summary", "researcher"} <= set(types)
    assert "ghost" not in types
    assert "summarise" in types["csv-summary"]["commands"]
    log = system.log("operations").read_text()
    assert "agent_type_skipped" in log
    assert "broken-agents 0.1" in log

    agent_id = await spawn(rest, "csv-summary")
    described = (await rest.get(f"/api/vsm/agents/{agent_id}")).json()
    assert described["pool"] is None  # operations' own partitions
    answer = await rest.post(
        f"/api/vsm/agents/{agent_id}/command",
        json={"type": "summarise", "data": {"text": "a,b\n1,2\n3,4\n"}},
    )
    summary = answer.json()["result"]
    assert summary["rows"] == 2
    assert [(c["name"], c["mean"]) for c in summary["columns"]] == [("a", 2.0), ("b", 3.0)]


async def test_a_host_may_not_take_an_installed_types_name(
    system: LocalSystem, tmp_path: Path
) -> None:
    (tmp_path / "clashing.py").write_text(CLASHING)
    host = start_host(system, "clasher", ["clashing"], tmp_path, PYTHONPATH=f"{tmp_path}:{ROOT}")
    try:
        code = await asyncio.to_thread(host.process.wait, 90)
    finally:
        host.stop()
    assert code != 0
    log = host.log.read_text()
    assert "agent_type_clash" in log
    assert "agent host clasher" in log
    assert "operations (its built-in and installed types)" in log


async def test_a_command_to_an_agent_no_host_serves_answers_no_host(
    rest: httpx.AsyncClient, system: LocalSystem, tmp_path: Path
) -> None:
    host = start_host(system, "short-lived", ["tests.support.host_agents"], tmp_path)
    try:
        await asyncio.to_thread(host.wait_ready)
        agent_id = await spawn(rest, "tally")
        url = f"/api/vsm/agents/{agent_id}/command"
        answered = await rest.post(url, json={"type": "add", "data": {"value": 1}})
        assert answered.json()["result"]["total"] == 1
    finally:
        host.stop()  # SIGTERM: a clean shutdown (uvicorn then re-raises the signal)
    assert "service_stopped" in host.log.read_text()

    async def refused() -> dict[str, Any] | None:
        spawned = await rest.post("/api/vsm/agents", json={"type": "tally"})
        return spawned.json() if spawned.status_code == 409 else None

    refusal = await eventually(refused, timeout=30, what="no live host of tally")
    assert refusal["error"] == "no_host_for_type"
    assert refusal["details"]["agent_type"] == "tally"
    late = await rest.post(url, json={"type": "add", "data": {"value": 1}, "timeout_s": 2})
    assert late.status_code == 504, late.text
    assert late.json()["error"] == "no_host"
    assert "tally" in late.json()["message"]
