"""The operations room's bar in a real browser: usable at a desktop's and a phone's width,
every control reachable by keyboard, readable in light and dark, no layout jump when data
updates, nothing that blinks; and the actions no other test clicks (S3* audit, terminate,
requeue of a dead letter)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from scripts.localrun import LocalSystem
from tests.support.console import OPERATE, open_page
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.system5 import OperatorAlert
from vsm.kit.bus import AnyEnvelope

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), "
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)

# Every control on the page that shows, and whether it lies inside the viewport's width
# (a control inside a box that scrolls on its own, a wide table's, counts as inside).
CONTROLS_OUTSIDE = """(selector) => {
  const outside = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.classList.contains('skip')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    if (el.closest('.table-wrap, .trace-graph, output.result, pre')) continue;
    if (box.left < -0.5 || box.right > innerWidth + 0.5)
      outside.push(el.outerHTML.slice(0, 120) + ' at ' + box.left + '..' + box.right);
  }
  return outside;
}"""

# What the element in focus is, in words that stay the same when a live update morphs it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    key: describe(el),
    visible: el.matches(':focus-visible') && (
      (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
      || style.boxShadow !== 'none'),
  };
  function describe(e) {
    return [e.tagName, e.id, e.getAttribute('href'), e.getAttribute('name'),
            e.textContent.trim().slice(0, 40)].join('|');
  }
}"""

REACHABLE = """(selector) => [...document.querySelectorAll(selector)].filter((e) => {
  const box = e.getBoundingClientRect();
  return (box.width > 0 && box.height > 0 && getComputedStyle(e).visibility !== 'hidden')
    || e.classList.contains('skip');
}).map((e) => [e.tagName, e.id, e.getAttribute('href'), e.getAttribute('name'),
               e.textContent.trim().slice(0, 40)].join('|'))"""

# The contrast of an element's text on what is behind it (WCAG 2 relative luminance).
CONTRAST = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const behind = (e) => {
    for (let here = e; here; here = here.parentElement) {
      const c = rgb(getComputedStyle(here).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const fg = rgb(getComputedStyle(el).color).slice(0, 3), bg = behind(el);
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return { fg: fg.join(','), bg: bg.join(','), ratio: (hi + 0.05) / (lo + 0.05) };
}"""


async def spawned(gateway: httpx.AsyncClient, name: str) -> str:
    unique = f"{name}-{uuid.uuid4().hex[:6]}"
    answer = await gateway.post("/api/vsm/agents", json={"type": "worker", "name": unique})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["agent_id"])


async def held_for_a_person(gateway: httpx.AsyncClient) -> None:
    """A rules throttle that a governance holds for approval: one row on the Approvals page."""
    vsm_id = {"vsm_id": f"root/bar{uuid.uuid4().hex[:6]}"}
    rights = {"principles": ["p"], "approvals": [{"policy_type": "throttle", "authors": ["rules"]}]}
    held = await gateway.put("/api/vsm/policies/governance", json={"policy": rights}, params=vsm_id)
    assert held.status_code == 200, held.text
    slow = {"anomaly_type": "latency", "severity": 0.6, "context": {"agent_id": "bar-unit"}}
    synthesis = await gateway.post("/api/vsm/system5/synthesis", json=slow, params=vsm_id)
    assert synthesis.json()["applied"] is None, synthesis.text


async def console_pages(gateway: httpx.AsyncClient) -> list[str]:
    agent_id = await spawned(gateway, "bar-unit")
    await held_for_a_person(gateway)
    return [
        "/console",
        "/console/agents",
        "/console/agents?spawn=worker",
        f"/console/agent?id={agent_id}",
        "/console/interventions",
        "/console/approvals",
        "/console/policies",
        "/console/systems",
        "/console/trace",
        "/console/dead-letters?queue=vsm.operators.alerts.dlq",
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop-1280", "phone-390"])
async def test_every_page_fits_the_width_with_its_controls_in_view(
    browser: Browser, system: LocalSystem, gateway: httpx.AsyncClient, viewport: dict[str, int]
) -> None:
    context, page = await open_page(browser, system, OPERATE, "/console/sign-in")
    await page.set_viewport_size(viewport)  # type: ignore[arg-type]
    problems: dict[str, Any] = {}
    for path in await console_pages(gateway):
        await page.goto(path)
        await expect(page.locator("h1").first).to_be_visible()
        await expect(page.locator("nav.pages a").first).to_be_in_viewport()
        await expect(page.locator("#sign-out")).to_be_in_viewport()
        overflow = await page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        outside = await page.evaluate(CONTROLS_OUTSIDE, FOCUSABLE)
        if overflow[0] > overflow[1] or outside:
            problems[path] = {"scrollWidth, innerWidth": overflow, "outside": outside}
    assert problems == {}
    await context.close()


async def tab_through(page: Page) -> tuple[list[str], list[str]]:
    """Tab from the top of the page until focus comes round again: what took focus, in
    order, and which of those showed no focus ring."""
    order: list[str] = []
    unringed: list[str] = []
    for _ in range(400):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            if order:
                break
            continue
        if order and focused["key"] == order[0]:
            break
        order.append(focused["key"])
        if not focused["visible"]:
            unringed.append(focused["key"])
    return order, unringed


@pytest.mark.parametrize("which", ["map", "agents", "spawn", "agent"])
async def test_every_control_takes_focus_by_keyboard_with_a_visible_ring(
    browser: Browser, system: LocalSystem, gateway: httpx.AsyncClient, which: str
) -> None:
    path = {
        "map": "/console",
        "agents": "/console/agents",
        "spawn": "/console/agents?spawn=worker",
        "agent": f"/console/agent?id={await spawned(gateway, 'keyed')}",
    }[which]
    context, page = await open_page(browser, system, OPERATE, path)
    await expect(page.locator("h1").first).to_be_visible()
    controls = await page.evaluate(REACHABLE, FOCUSABLE)
    assert controls, "a page with no controls"
    order, unringed = await tab_through(page)
    assert [c for c in controls if c not in order] == []
    assert unringed == []
    await context.close()


@pytest.mark.parametrize("path", ["/console", "/console/agents", "/console/interventions"])
async def test_light_and_dark_both_read_with_enough_contrast(
    browser: Browser, system: LocalSystem, path: str
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for scheme in ("light", "dark"):
        context, page = await open_page(browser, system, OPERATE, path, color_scheme=scheme)
        await expect(page.locator("h1").first).to_be_visible()
        measured = {}
        for sample in ("body", "h1", "main p, main td, main li", ".muted", "nav.pages a",
                       "#sign-out", "nav.pages a[aria-current=page]", "main button"):  # fmt: skip
            contrast = await page.evaluate(CONTRAST, sample)
            if contrast is not None:
                measured[sample] = contrast
        seen[scheme] = measured
        await context.close()
    light, dark = seen["light"], seen["dark"]
    assert light["body"]["bg"] != dark["body"]["bg"]
    assert light["body"]["fg"] != dark["body"]["fg"]
    low = {
        f"{scheme} {sample}": round(c["ratio"], 2)
        for scheme, measured in seen.items()
        for sample, c in measured.items()
        if c["ratio"] < 4.5
    }
    assert low == {}


LAYOUT_SHIFTS = """() => {
  window.__shift = 0; window.__shifts = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      window.__shift += e.value;
      window.__shifts.push({value: e.value, sources: (e.sources || []).map((s) =>
        (s.node && s.node.nodeType === 1 ? s.node.outerHTML.slice(0, 80) : String(s.node)))});
    }
  }).observe({type: 'layout-shift', buffered: false});
}"""

ENDLESS = """() => document.getAnimations()
  .filter((a) => a.effect && a.effect.getComputedTiming().iterations === Infinity)
  .map((a) => (a.animationName || a.transitionProperty || 'animation') + ' on ' +
       (a.effect.target ? a.effect.target.outerHTML.slice(0, 80) : '?'))"""


# How far the algedonic pulse climbs on its way to S5, from its start to near its end.
PULSE_RISES = """() => {
  const pulse = document.querySelector('.channel .pulse');
  const [travel] = pulse.getAnimations();
  const from = (t) => { travel.currentTime = t; return pulse.getBoundingClientRect().top; };
  travel.pause();
  const rise = from(0) - from(1300);
  travel.finish();
  return rise;
}"""


async def test_live_updates_on_the_map_move_nothing_and_nothing_blinks(
    operator: Page, gateway: httpx.AsyncClient
) -> None:
    await expect(operator.locator("#h-s5")).to_be_visible()
    await asyncio.sleep(1.0)  # the first paint and its first live update settle
    await operator.evaluate(LAYOUT_SHIFTS)
    assert await operator.evaluate(ENDLESS) == []
    for _ in range(4):
        answer = await gateway.post(
            "/api/vsm/algedonic/pain", json={"intensity": 0.6, "reason": "error_burst"}
        )
        assert answer.status_code == 202
    await spawned(gateway, "arrives-live")
    await expect(operator.locator("#units")).to_contain_text("arrives-live-")
    await expect(operator.locator("#open-interventions li[id^='oi-']").first).to_be_visible()
    await expect(operator.locator(".channel .pulse")).to_have_class(re.compile("travel"))
    assert await operator.evaluate(ENDLESS) == []  # the pulse runs once, as everything else
    rises = await operator.evaluate(PULSE_RISES)
    assert rises > 200, f"the pulse rose {rises} px up the channel"
    await asyncio.sleep(2.0)  # the pulse's travel and the bars' transitions end
    shifts = await operator.evaluate("window.__shifts")
    assert await operator.evaluate("window.__shift") < 0.01, shifts
    moved_by_the_pulse = [s for s in shifts if any("pulse" in n for n in s["sources"])]
    assert moved_by_the_pulse == []  # the signal travels by a transform, not by layout
    assert await operator.evaluate(ENDLESS) == []


async def test_an_s3_star_audit_shows_its_result_and_terminate_ends_the_agent(
    browser: Browser, system: LocalSystem, gateway: httpx.AsyncClient
) -> None:
    agent_id = await spawned(gateway, "audited")
    context, page = await open_page(browser, system, OPERATE, f"/console/agent?id={agent_id}")
    await page.click("#audit")
    result = page.locator("#audit-result")
    await expect(result).to_contain_text(agent_id)
    await expect(page.locator("#flash")).to_contain_text("Audited")
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("#terminate")
    await expect(page).to_have_url(re.compile(r"/console/agents$"))
    await expect(page.locator("#flash")).to_contain_text("Terminated")  # said on the next page
    await expect(page.locator("#agents")).not_to_contain_text(agent_id)
    for _ in range(50):
        if (await gateway.get(f"/api/vsm/agents/{agent_id}")).status_code == 404:
            break
        await asyncio.sleep(0.1)
    assert (await gateway.get(f"/api/vsm/agents/{agent_id}")).status_code == 404
    await context.close()


async def test_a_requeued_dead_letter_goes_back_where_it_was_going(
    operator: Page, gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    dlq = "vsm.operators.alerts.dlq"  # the bot is off here: it parks every alert
    alert = OperatorAlert(
        alert_id="al-requeue", intervention_id="iv-requeue", severity="warning",
        title="requeued", text="", pain_level=0.8, escalation_level=1,
    )  # fmt: skip
    await system_probe.bus.publish(topology.OPERATORS, alert, routing_key="alert.warning")
    message_id = ""
    for _ in range(100):
        latest = (await gateway.get(f"/api/vsm/dead-letters/{dlq}", params={"latest": 20})).json()
        ours = [x for x in latest["latest"] if '"al-requeue"' in x["preview"]]
        if ours:
            message_id = ours[0]["message_id"]
            break
        await asyncio.sleep(0.1)
    assert message_id, "the alert was never dead-lettered"
    watched = await system_probe.bind_queue("console.requeued", topology.OPERATORS.name, "alert.#")

    await operator.goto(f"/console/dead-letters?queue={dlq}")
    letter = operator.locator("#h-opened ~ article", has_text=message_id)
    await letter.locator("button", has_text="Requeue").click()
    await expect(operator.locator("#h-opened")).to_be_visible()  # the page read it again
    await expect(operator.locator("#flash")).to_contain_text("Requeued")
    deadline = time.monotonic() + 5
    again = None
    while (left := deadline - time.monotonic()) > 0:
        message = await system_probe.get(watched, timeout=left)
        if message.message_id == message_id:
            again = AnyEnvelope.validate_json(message.body).data
            break
    assert isinstance(again, OperatorAlert)
    assert again.alert_id == "al-requeue"
