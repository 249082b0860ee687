"""The operations room in a real browser: Debian's Chromium, driven by Playwright, against
the seven services on a real broker.

Nothing is downloaded: Playwright's wheel carries its driver and the browser is the
system's (`make test` installs the `chromium` package). Each launch gets a new, empty
profile (Playwright's own temporary `--user-data-dir`), with the network features that would
reach outside this machine turned off.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from scripts.localrun import LocalSystem
from tests.support.console import CHROMIUM, FLAGS, OPERATE, SETTINGS, open_page
from tests.support.system import gateway, system, system_probe

__all__ = ["gateway", "system", "system_probe"]  # the integration suite's running system


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


@pytest.fixture
async def operator(browser: Browser, system: LocalSystem) -> AsyncIterator[Page]:
    """A signed-in operator's browser tab on the map."""
    context, page = await open_page(browser, system, OPERATE)
    yield page
    await context.close()
