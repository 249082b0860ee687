"""The operations room in a real browser: Debian's Chromium, driven by Playwright, against
the seven services on a real broker.

Nothing is downloaded: Playwright's wheel carries its driver and the browser is the
system's (`make test` installs the `chromium` package). Each launch gets a new, empty
profile (Playwright's own temporary `--user-data-dir`), with the network features that would
reach outside this machine turned off.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from scripts.localrun import LocalSystem
from tests.integration.conftest import gateway, system, system_probe

__all__ = ["gateway", "system", "system_probe"]  # the integration suite's running system

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


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return SETTINGS


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


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


@pytest.fixture
async def operator(browser: Browser, system: LocalSystem) -> AsyncIterator[Page]:
    """A signed-in operator's browser tab on the map."""
    context, page = await open_page(browser, system, OPERATE)
    yield page
    await context.close()
