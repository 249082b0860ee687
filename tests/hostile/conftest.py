"""One running system for the hostile-input modules, configured as an operator would harden it.

Signing keys on, an MCP bearer token, the Telegram bot against the fake Bot API and the LLM
against the fake Messages API. The fake model is a compromised one: it answers by repeating
what it was given (system prompt, tools, conversation), so a secret in a model's context
would reach a reply. Every secret below is distinctive, to be searched for.
The modules share the system (one start-up instead of four); each checks what it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from scripts.localrun import LocalSystem
from tests.security.signed import launch_system
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_telegram import FakeTelegram
from tests.support.hostile import (
    ANTHROPIC_KEY,
    BOT_TOKEN,
    MCP_TOKEN,
    PERSON,
    SIGNING_KEYS,
    compromised_model,
)
from tests.support.system import shut_down
from tests.support.tokens import gateway_client


@pytest.fixture(scope="package")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="package")
def llm() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(default_reply=compromised_model, api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture(scope="package")
def hostile_system(
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    telegram: FakeTelegram,
    llm: FakeAnthropic,
) -> Iterator[LocalSystem]:
    running = launch_system(
        amqp_url,
        tmp_path_factory.mktemp("hostile-logs"),
        VSM_SIGNING_KEYS=SIGNING_KEYS,
        MCP_AUTH_TOKEN=MCP_TOKEN,
        MCP_RATE_LIMIT="100000",
        TELEGRAM_ALLOWED_CHAT_IDS=str(PERSON),
        TELEGRAM_POLL_TIMEOUT_S="1",
        **telegram.env(),
        **llm.env(api_key=ANTHROPIC_KEY),
    )
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
async def gateway(hostile_system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(hostile_system, timeout=30) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The injection test first among these modules: it checks that nothing changed, on a
    system that no fuzzing has stirred yet (pain sent by a fuzzer opens interventions whose
    policies S5 lifts later, on its own schedule)."""
    slots = [index for index, item in enumerate(items) if "tests/hostile/" in item.nodeid]
    ordered = sorted(
        (items[index] for index in slots), key=lambda item: "test_telegram" not in item.nodeid
    )
    for index, item in zip(slots, ordered, strict=True):
        items[index] = item
