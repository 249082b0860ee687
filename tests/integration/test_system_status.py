"""The foundation's promise: seven services up, their state visible over AMQP, and death seen."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localrun import SERVICES
from tests.support.probe import open_probe
from tests.support.system import HEALTH_INTERVAL_S, launch, shut_down
from tests.support.tokens import gateway_client
from vsm.contract.health import Ping, Pong

pytestmark = pytest.mark.integration


async def wait_for_status(
    gateway: httpx.AsyncClient, predicate: Any, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await gateway.get("/api/vsm/status")
        if response.status_code == 200:
            last = response.json()
            if predicate(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"status never satisfied the condition; last: {last}")


def states(status: dict[str, Any]) -> dict[str, str]:
    return {c["service"]: c["state"] for c in status["components"]}


async def test_status_lists_the_five_systems_and_two_gateways_up(
    gateway: httpx.AsyncClient,
) -> None:
    status = await wait_for_status(gateway, lambda s: set(states(s).values()) == {"up"})
    assert list(states(status)) == list(SERVICES)
    assert status["state"] == "up"
    roles = {c["service"]: c["role"] for c in status["components"]}
    assert roles == {
        "queen": "S5",
        "intelligence": "S4",
        "control": "S3",
        "coordinator": "S2",
        "operations": "S1",
        "telegram-gateway": "gateway",
        "mcp-gateway": "gateway",
    }
    assert all(c["last_seen"] for c in status["components"])


async def test_telegram_gateway_without_token_is_up_and_says_the_bot_is_disabled(
    gateway: httpx.AsyncClient,
) -> None:
    status = await wait_for_status(gateway, lambda s: states(s)["telegram-gateway"] == "up")
    telegram = next(c for c in status["components"] if c["service"] == "telegram-gateway")
    assert telegram["details"]["bot"] == "disabled"


@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_service_answers_a_ping_over_amqp(system_probe: Any, service: str) -> None:
    reply = await system_probe.bus.request(service, "ping", Ping())
    assert isinstance(reply.data, Pong)
    assert reply.data.service == service


async def test_a_killed_service_shows_down_and_the_rest_stay_up(
    amqp_url: str, tmp_path: Path
) -> None:
    system = launch(amqp_url, tmp_path / "logs")
    try:
        async with gateway_client(system, timeout=10) as gateway:
            await wait_for_status(gateway, lambda s: set(states(s).values()) == {"up"})
            system.kill("control")
            killed_at = time.monotonic()
            status = await wait_for_status(
                gateway, lambda s: states(s)["control"] == "down", timeout=10
            )
            seen_down_after = time.monotonic() - killed_at
            print(
                f"control shown down {seen_down_after:.2f}s after SIGKILL "
                f"({seen_down_after / HEALTH_INTERVAL_S:.1f} report intervals)"
            )
            assert status["state"] == "degraded"
            assert {s for n, s in states(status).items() if n != "control"} == {"up"}
    finally:
        await shut_down(system, amqp_url)


async def test_sigterm_stops_every_service_cleanly(amqp_url: str, tmp_path: Path) -> None:
    system = launch(amqp_url, tmp_path / "logs")
    try:
        async with open_probe(amqp_url, system.env["VSM_NAMESPACE"]) as probe:
            await probe.bus.request("operations", "ping", Ping())
        for name in SERVICES:
            system.kill(name, signal.SIGTERM)
        for process in system.processes.values():
            process.wait(timeout=15)  # within the grace period, or the test fails here
        for name in SERVICES:
            events = [
                json.loads(line).get("event") for line in system.log(name).read_text().splitlines()
            ]
            assert "service_stopped" in events, f"{name} did not shut down gracefully"
    finally:
        await shut_down(system, amqp_url)
