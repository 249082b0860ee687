"""Screenshots of every page of the operations room, light and dark, desktop and phone, into
`docs/console/` (`make screenshots`).

Runs the seven services on the broker at `AMQP_URL` (under a namespace of its own, deleted
afterwards), gives them something to show (agents, a nested viable system, work for S2, a
pain burst that opens an intervention and escalates), then drives Debian's Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.localrun import SERVICES, LocalSystem
from tests.support.cleanup import delete_namespace

TOKEN = secrets.token_urlsafe(24)
BEARER = {"Authorization": f"Bearer {TOKEN}"}
"""Every REST route wants the token, the script's staging too."""
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stage(gateway: str) -> dict[str, str]:
    """Give the system something to show; the ids the pages need."""
    with httpx.Client(base_url=gateway, headers=BEARER, timeout=30) as http:
        names = ["ingest", "billing", "reports", "search", "mailer", "resize", "archive"]
        agents = [
            http.post("/api/vsm/agents", json={"type": "worker", "name": n}).json() for n in names
        ]
        http.post("/api/vsm/agents", json={"type": "sensor", "name": "host-load"})
        child = {"name": "logistics", "purpose": "Deliver on time"}
        http.post("/api/vsm/meta-systems", json=child | {"budget": {"concurrency_slots": 8}})
        for i, agent in enumerate(agents[:4]):
            for _ in range(3):
                work = {"command_type": "process_data", "data": {"data": i}}
                lane = ("interactive", "batch")[i % 2]
                http.post(
                    "/api/vsm/work", json={"lane": lane, "agent_id": agent["agent_id"], **work}
                )
        http.post("/api/vsm/system/3/audit", json={})
        held = {"principles": ["people approve throttles"], "approvals": [
            {"policy_type": "throttle", "authors": ["rules"]}
        ]}  # fmt: skip
        logistics = {"vsm_id": "root/logistics"}
        http.put("/api/vsm/policies/governance", json={"policy": held}, params=logistics)
        slow = {"anomaly_type": "latency", "severity": 0.6, "context": {"agent_id": "resize"}}
        http.post("/api/vsm/system5/synthesis", json=slow, params=logistics)  # held: pending
        for _ in range(4):
            pain = {"intensity": 0.6, "reason": "error_burst", "context": {"agent_id": "billing"}}
            http.post("/api/vsm/algedonic/pain", json=pain)
        time.sleep(5)  # the intervention escalates to operators
        interventions = http.get("/api/vsm/system/5").json()["interventions"]
        return {"agent": agents[1]["agent_id"], "signal": interventions[0]["opened_by"]}


async def shoot(browser: Browser, gateway: str, ids: dict[str, str], out: Path) -> None:
    trace = await trace_node(gateway, ids["signal"])
    pages = {
        "map": "/console",
        "agents": "/console/agents?spawn=worker",
        "agent": f"/console/agent?id={ids['agent']}",
        "interventions": "/console/interventions",
        "approvals": "/console/approvals",
        "policies": "/console/policies?type=throttle",
        "systems": "/console/systems",
        "trace": f"/console/trace?id={ids['signal']}&node={trace}",
        "dead-letters": "/console/dead-letters?queue=vsm.operators.alerts.dlq",
        "child": "/console?vsm_id=root/logistics",
    }
    for scheme in ("light", "dark"):
        for screen, viewport in SCREENS.items():
            context = await browser.new_context(
                base_url=gateway, viewport=viewport, color_scheme=scheme,  # type: ignore[arg-type]
                is_mobile=screen == "phone", device_scale_factor=1,
            )  # fmt: skip
            cookie = {"name": "vsm_console", "value": f"{int(time.time()) + 3600}.{TOKEN}"}
            await context.add_cookies([cookie | {"url": gateway, "httpOnly": True}])  # type: ignore[list-item]
            page = await context.new_page()
            for name, path in pages.items():
                await page.goto(path)
                await page.wait_for_timeout(1200)  # the live stream's first update
                await page.screenshot(path=out / f"{name}-{scheme}-{screen}.png")
            await context.clear_cookies()
            await page.goto("/console/sign-in")
            await page.screenshot(path=out / f"sign-in-{scheme}-{screen}.png")
            await context.close()


async def trace_node(gateway: str, signal: str) -> str:
    async with httpx.AsyncClient(base_url=gateway, headers=BEARER) as http:
        chain: list[dict[str, Any]] = (await http.get(f"/api/vsm/trace/{signal}")).json()["chain"]
        return next((s["id"] for s in chain if "policy" in s["type"]), signal)


async def main(out: Path) -> None:
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    namespace = f"shots{secrets.token_hex(3)}"
    env = {
        "AMQP_URL": url, "VSM_NAMESPACE": namespace, "MCP_AUTH_TOKEN": TOKEN,
        "TELEGRAM_BOT_TOKEN": "", "ESCALATION_DEADLINE_S": "2", "HEALTH_INTERVAL": "0.5",
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as logs:
        system = LocalSystem(env, Path(logs), {name: free_port() for name in SERVICES})
        system.start()
        try:
            system.wait_ready(timeout=180)
            ids = await asyncio.to_thread(stage, system.url("mcp-gateway"))
            await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                await shoot(browser, system.url("mcp-gateway"), ids, out)
                await browser.close()
        finally:
            system.stop()
            await delete_namespace(url, namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    asyncio.run(main(parser.parse_args().out))
