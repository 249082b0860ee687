"""The operations room in a real browser: Debian's Chromium (flags that keep it off the
network), the console's tokens and settings, and a signed-in page opened without the form."""

from __future__ import annotations

import time

from playwright.async_api import Browser, BrowserContext, Page

from scripts.localrun import LocalSystem

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATE = "console-operate-token-5f1c2a9e"
READ = "console-read-token-7b3d4e0f"
SETTINGS = {
    "MCP_AUTH_TOKEN": OPERATE,
    "VSM_READ_TOKENS": READ,
    "ALGEDONIC_HALF_LIFE_S": "30",
    "ESCALATION_DEADLINE_S": "2",
    "ESCALATION_MAX_LEVELS": "10",
}


def session_cookie(system: LocalSystem, token: str, lifetime_s: float = 3600) -> dict[str, object]:
    """The cookie the console sets at sign-in, made here to skip the form."""
    return {
        "name": "vsm_console",
        "value": f"{int(time.time() + lifetime_s)}.{token}",
        "url": system.url("mcp-gateway"),
        "httpOnly": True,
        "sameSite": "Strict",
    }


async def open_page(
    browser: Browser,
    system: LocalSystem,
    token: str | None,
    path: str = "/console",
    **options: object,
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        base_url=system.url("mcp-gateway"), viewport={"width": 1280, "height": 900}, **options
    )
    context.set_default_timeout(10_000)
    if token is not None:
        await context.add_cookies([session_cookie(system, token)])  # type: ignore[list-item]
    page = await context.new_page()
    await page.goto(path)
    return context, page
