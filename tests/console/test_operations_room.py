"""The operations room as an operator uses it: Chromium against the running system.

Every assertion is about what the page shows (or what the bus carries), with the page
never reloaded where the console promises live updates.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from scripts.localrun import LocalSystem
from tests.support.console import OPERATE, READ, open_page, session_cookie
from tests.support.probe import Probe
from tests.support.tokens import bearer
from vsm.contract import topology
from vsm.contract.adaptation import AdaptationProposal, proposal_key
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.system5 import OperatorAlert
from vsm.kit.bus import AnyEnvelope

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def mark_loaded(page: Page) -> str:
    """A token only this load of the page holds: still there later means no reload."""
    marker = uuid.uuid4().hex
    await page.evaluate(f"window.__loaded = '{marker}'")
    return marker


async def still_loaded(page: Page, marker: str) -> None:
    assert await page.evaluate("window.__loaded") == marker, "the page was reloaded"


async def pain(probe: Probe, vsm_id: str, count: int = 4) -> None:
    for _ in range(count):
        signal = AlgedonicSignal(
            kind="pain", intensity=0.6, origin="operations/console-test", reason="error_burst"
        )
        await probe.bus.publish(topology.ALGEDONIC, signal, vsm_id=vsm_id)


async def test_sign_in_with_the_token_shows_the_map(browser: Browser, system: LocalSystem) -> None:
    context, page = await open_page(browser, system, None)
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console$"))
    await page.fill("#f-token", "not-the-token")
    await page.click("button[type=submit]")
    await expect(page.locator('[data-error-for="token"]')).to_have_text(
        "this token is not valid here"
    )
    await page.fill("#f-token", OPERATE)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.locator("#h-s5")).to_have_text("Policy and identity")
    for system_name in ("#h-s4", "#h-s3", "#h-s3s", "#h-s2", "#h-s1"):
        await expect(page.locator(system_name)).to_be_visible()
    cookie = next(c for c in await context.cookies() if c["name"] == "vsm_console")
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert await page.evaluate("document.cookie") == ""  # no script can read it
    await context.close()


async def test_a_pain_burst_shows_on_the_map_with_an_intervention_within_two_seconds(
    operator: Page, gateway: httpx.AsyncClient
) -> None:
    await expect(operator.locator("#open-interventions")).to_contain_text("none")
    marker = await mark_loaded(operator)
    for _ in range(4):
        answer = await gateway.post(
            "/api/vsm/algedonic/pain", json={"intensity": 0.6, "reason": "error_burst"}
        )
        assert answer.status_code == 202
    sent = time.monotonic()
    intervention = operator.locator("#open-interventions li[id^='oi-']").first
    await expect(intervention).to_be_visible(timeout=2_000)
    assert time.monotonic() - sent < 2.0
    assert float(await operator.locator("#pain").inner_text()) >= 0.7
    await expect(operator.locator(".channel .pulse")).to_have_class(re.compile("travel"))
    await still_loaded(operator, marker)


async def test_a_spawned_agent_appears_and_a_typed_command_returns_its_result(
    browser: Browser, system: LocalSystem, operator: Page
) -> None:
    marker = await mark_loaded(operator)
    context, page = await open_page(browser, system, OPERATE, "/console/agents?spawn=worker")
    await page.fill("#f-name", "room-worker")
    await page.fill("#f-config\\.allocation", "2")
    await page.click("#spawn-form button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/console/agent\?id="))
    await expect(page.locator("#h-about")).to_contain_text("room-worker")
    await expect(operator.locator("#units")).to_contain_text("room-worker")  # the map, live
    await still_loaded(operator, marker)

    await page.click('a.chip[href*="command=analyze"]')
    await expect(page.locator("#command-form input[name=type]")).to_have_value("analyze")
    await page.fill("#f-data\\.values", "[2, 4, 6, 8]")  # a field of analyze's input schema
    await page.click("#command-form button[type=submit]")
    result = page.locator("#command-result")
    await expect(result).to_contain_text(re.compile(r"^ok in "))
    await expect(result).to_contain_text('"mean": 5')
    await expect(result).to_contain_text('"trend": "increasing"')

    await page.fill("#f-data\\.values", '[2, "four"]')
    await page.click("#command-form button[type=submit]")
    slot = page.locator('#command-form [data-error-for="data.values"]')
    await expect(slot).to_contain_text("valid number")  # the agent's answer, by its field
    await expect(page.locator("#f-data\\.values")).to_have_attribute("aria-invalid", "true")
    await expect(result).to_contain_text("data.values.1")
    await page.goto("/console/agents")
    await expect(page.locator("#agents")).to_contain_text("room-worker")
    await context.close()


async def test_field_errors_show_next_to_their_fields(
    browser: Browser, system: LocalSystem
) -> None:
    context, page = await open_page(browser, system, OPERATE, "/console/agents?spawn=worker")
    await page.fill("#f-name", "Not A Name!")
    await page.click("#spawn-form button[type=submit]")
    await expect(page.locator('[data-error-for="name"]')).to_contain_text("should match pattern")
    await page.fill("#f-name", "")
    await page.fill("#f-config\\.allocation", "many")
    await page.click("#spawn-form button[type=submit]")
    slot = page.locator('[data-error-for="config.allocation"]')
    await expect(slot).to_contain_text("valid integer")
    await expect(page.locator('[data-error-for="name"]')).to_have_text("")
    await expect(page.locator("#f-config\\.allocation")).to_have_attribute("aria-invalid", "true")
    await context.close()


async def alerts_of(probe: Probe, queue: str, seconds: float) -> list[OperatorAlert]:
    seen = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await probe.get(queue, timeout=left)
        except TimeoutError:
            break
        body = AnyEnvelope.validate_json(message.body).data
        if isinstance(body, OperatorAlert):
            seen.append(body)
    return seen


async def test_acknowledging_an_alert_stops_its_escalation(
    operator: Page, system_probe: Probe
) -> None:
    vsm_id = f"root/ack{uuid.uuid4().hex[:6]}"
    alerts = await system_probe.bind_queue("console.alerts", topology.OPERATORS.name, "alert.#")
    await pain(system_probe, vsm_id)
    ours = [a for a in await alerts_of(system_probe, alerts, 5) if a.title.startswith(vsm_id)]
    first = ours[0]
    await operator.goto(f"/console/interventions?vsm_id={vsm_id}")
    button = operator.locator("#alerts button", has_text="Acknowledge").first
    await expect(button).to_be_visible()
    await button.click()
    await expect(operator.locator("#flash")).to_contain_text("Acknowledged")
    await expect(operator.locator(f"#iv-{first.intervention_id}")).to_contain_text("acknowledged")
    await asyncio.sleep(0.5)  # alerts already on their way when the ack was sent
    while await alerts_of(system_probe, alerts, 0.2):
        pass
    later = await alerts_of(system_probe, alerts, 5)  # two and a half escalation deadlines
    assert [a for a in later if a.intervention_id == first.intervention_id] == []


async def test_the_trace_of_an_intervention_shows_its_chain(operator: Page) -> None:
    await operator.goto("/console/interventions")
    await operator.locator("#interventions tbody a").first.click()
    await expect(operator).to_have_url(re.compile(r"/console/trace\?id="))
    graph = operator.locator("#trace-graph")
    for kind in ("signal", "intervention", "policy"):
        await expect(graph.locator("text.kind", has_text=kind).first).to_be_visible()
    node = graph.locator("a", has=operator.locator("text.kind", has_text="policy")).first
    await node.focus()
    await operator.keyboard.press("Enter")
    await expect(operator.locator("#node-detail")).to_contain_text("vsm.s5.policy.changed")


async def test_a_read_only_token_sees_everything_and_can_act_on_nothing(
    browser: Browser, system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    spawned = await gateway.post("/api/vsm/agents", json={"type": "worker", "name": "looked-at"})
    agent_id = spawned.json()["agent_id"]
    context, page = await open_page(browser, system, READ, f"/console/agent?id={agent_id}")
    await expect(page.locator("#h-about")).to_contain_text("looked-at")
    await expect(page.locator("#scope")).to_have_text("read-only")
    for action in ("#command-form", "#terminate", "#audit"):
        await expect(page.locator(action)).to_have_count(0)
    await page.goto("/console/agents?spawn=worker")
    await expect(page.locator("#spawn-form")).to_have_count(0)
    await page.goto("/console/interventions")
    await expect(page.locator("#alerts button")).to_have_count(0)
    forged = await page.evaluate(
        """async (id) => (await fetch('/api/vsm/agents/' + id, {method: 'DELETE',
             headers: {'Content-Type': 'application/json', 'X-VSM-Console': '1'}})).status""",
        agent_id,
    )
    assert forged == 403
    posted = await page.evaluate(
        """async (id) => (await fetch('/api/vsm/agents/' + id + '/command', {method: 'POST',
             headers: {'Content-Type': 'application/json', 'X-VSM-Console': '1'},
             body: JSON.stringify({type: 'process_data', data: {data: 1}})})).status""",
        agent_id,
    )
    assert posted == 403
    assert (await gateway.get(f"/api/vsm/agents/{agent_id}")).json()["state"] == "running"
    await context.close()


async def test_a_request_from_a_foreign_origin_is_refused(
    system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    cookie = session_cookie(system, OPERATE)
    headers = {
        "Cookie": f"vsm_console={cookie['value']}",
        "X-VSM-Console": "1",
        "Origin": "http://evil.example",
    }
    spawn = await gateway.post("/api/vsm/agents", json={"type": "worker"}, headers=headers)
    assert spawn.status_code == 403
    assert spawn.json()["error"] == "origin_not_allowed"
    sign_in = await gateway.post("/console/sign-in", json={"token": OPERATE}, headers=headers)
    assert sign_in.status_code == 403
    assert "set-cookie" not in sign_in.headers
    rebound = await gateway.get("/console", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 421
    as_text = await gateway.post(
        "/api/vsm/agents",
        content='{"type": "worker"}',
        headers={**headers, "Origin": system.url("mcp-gateway"), "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415


async def test_an_ended_session_returns_to_sign_in(browser: Browser, system: LocalSystem) -> None:
    context, page = await open_page(browser, system, None)
    await context.add_cookies([session_cookie(system, OPERATE, lifetime_s=-5)])  # type: ignore[list-item]
    await page.goto("/console/policies")
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/policies"))
    await context.add_cookies([session_cookie(system, OPERATE, lifetime_s=2)])  # type: ignore[list-item]
    await page.goto("/console/policies")
    await expect(page.locator("#h-types")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/console/sign-in"), timeout=12_000)  # live
    await context.close()


async def test_a_lost_live_connection_shows_and_reconnects(
    operator: Page, system: LocalSystem, system_probe: Probe
) -> None:
    banner = operator.locator("#connection")
    await expect(banner).to_be_hidden()
    marker = await mark_loaded(operator)
    gateway = system.processes["mcp-gateway"]
    gateway.terminate()
    gateway.wait(timeout=30)
    await expect(banner).to_be_visible()
    system.start(["mcp-gateway"])
    await asyncio.to_thread(system.wait_ready, 120.0, ["mcp-gateway"])
    await expect(banner).to_be_hidden(timeout=30_000)
    before = await operator.locator("#unit-total").inner_text()
    answer = await asyncio.to_thread(
        httpx.post,
        f"{system.url('mcp-gateway')}/api/vsm/agents",
        json={"type": "worker", "name": "after-reconnect"},
        headers=bearer(OPERATE),
    )
    assert answer.status_code == 201
    await expect(operator.locator("#units")).to_contain_text("after-reconnect", timeout=10_000)
    assert await operator.locator("#unit-total").inner_text() != before
    await still_loaded(operator, marker)


async def test_dead_letters_are_listed_and_one_is_discarded(
    operator: Page, gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    dlq = "vsm.operators.alerts.dlq"  # the bot is off here: it parks every alert
    alert = OperatorAlert(
        alert_id="al-dead", intervention_id="iv-dead", severity="warning", title="parked",
        text="", pain_level=0.8, escalation_level=1,
    )  # fmt: skip
    await system_probe.bus.publish(topology.OPERATORS, alert, routing_key="alert.warning")
    for _ in range(100):
        listed = (await gateway.get("/api/vsm/dead-letters/")).json()
        if {q["queue"]: q["count"] for q in listed}[dlq]:
            break
        await asyncio.sleep(0.1)
    latest = (await gateway.get(f"/api/vsm/dead-letters/{dlq}", params={"latest": 2})).json()
    assert latest["latest"][0]["reason"] == "bot_disabled"
    assert (await gateway.get("/api/vsm/dead-letters/vsm.anything.else")).status_code == 404

    await operator.goto(f"/console/dead-letters?queue={dlq}")
    newest = operator.locator("#h-opened ~ article").first
    message_id = (await newest.locator("p.mono").inner_text()).split(" · ")[0]
    assert message_id in {x["message_id"] for x in latest["latest"]} | {message_id}
    operator.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await newest.locator("button", has_text="Discard").click()
    await expect(operator.locator("#h-opened")).to_be_visible()  # the page read it again
    await expect(operator.locator("#h-opened ~ article", has_text=message_id)).to_have_count(0)
    gone = await gateway.delete(f"/api/vsm/dead-letters/{dlq}/{message_id}")
    assert gone.status_code == 404


async def test_an_operator_approves_a_pending_proposal_and_it_leaves_the_list(
    operator: Page, browser: Browser, system: LocalSystem, gateway: httpx.AsyncClient,
    system_probe: Probe,
) -> None:  # fmt: skip
    """S4's throttle waits for a person (the governance says so); the approvals page shows it
    live, a read-only token sees no buttons, and the operator's Approve puts it in force."""
    vsm_id = f"root/apv{uuid.uuid4().hex[:6]}"
    rights = {"principles": ["people approve S4"], "approvals": [
        {"policy_type": "throttle", "authors": ["s4"]}
    ]}  # fmt: skip
    for kind, policy in (("governance", rights), ("throttle", {"limits": []})):
        stored = await gateway.put(
            f"/api/vsm/policies/{kind}", json={"policy": policy}, params={"vsm_id": vsm_id}
        )
        assert stored.status_code == 200, stored.text
    await operator.goto("/console/approvals")
    marker = await mark_loaded(operator)
    proposal = AdaptationProposal(
        proposal_id="p-console", kind="defensive", rationale="slow api-1 down",
        policy_type="throttle", confidence=0.7,
        policy={"limits": [{"target": "api-1", "max_rate_per_s": 3}]},
    )  # fmt: skip
    await system_probe.bus.publish(
        topology.INTELLIGENCE, proposal, routing_key=proposal_key("defensive"), vsm_id=vsm_id
    )
    row = operator.locator("#approvals tbody tr", has_text=vsm_id)
    await expect(row).to_contain_text("throttle by s4 needs approval")
    await still_loaded(operator, marker)

    context, reader = await open_page(browser, system, READ, "/console/approvals")
    await expect(reader.locator("#approvals tbody tr", has_text=vsm_id)).to_be_visible()
    await expect(reader.locator("#approvals button")).to_have_count(0)
    await reader.goto("/console/interventions")
    await expect(reader.locator("#awaiting")).to_contain_text("a person: Approvals")
    await context.close()

    operator.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await row.locator("button", has_text="Approve").click()
    await expect(operator.locator("#flash")).to_contain_text("Approved")
    await expect(row).to_have_count(0)
    await still_loaded(operator, marker)
    record = (await gateway.get("/api/vsm/policies/throttle", params={"vsm_id": vsm_id})).json()
    assert (record["version"], record["source"]) == (2, "s4:defensive")
    assert "approved by api:" in record["reason"]
