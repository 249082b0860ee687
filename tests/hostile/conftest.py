"""One running system for the hostile-input modules, configured as an operator would harden it.

Signing keys on, an MCP bearer token, the Telegram bot against the fake Bot API and the LLM
against the fake Messages API. The fake model is a compromised one: it answers by repeating
what it was given (system prompt, tools, conversation), so a secret in a model's context
would reach a reply. Every secret below is distinctive, to be searched for.
The modules share the system (one start-up instead of four); each checks what it changes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from scripts.localrun import SERVICES, LocalSystem
from tests.integration.conftest import shut_down
from tests.security.signed import launch_system, secret
from tests.support.fake_anthropic import FakeAnthropic, RecordedRequest
from tests.support.fake_telegram import FakeTelegram
from tests.support.tokens import OPERATE_TOKEN, READ_TOKEN, gateway_client

PERSON = 4242
"""The one chat the bot serves."""
STRANGER = 6666
MCP_TOKEN = f"mcp-{secrets.token_urlsafe(24)}"
BOT_TOKEN = f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(27)}"
ANTHROPIC_KEY = f"sk-ant-test-{secrets.token_urlsafe(24)}"
SIGNING_SECRET = secret(secrets.token_bytes(32))
SIGNING_KEYS = f"hostile:{SIGNING_SECRET}"
SECRETS = {
    "bot token": BOT_TOKEN,
    "bot token secret part": BOT_TOKEN.split(":", 1)[1],
    "Anthropic API key": ANTHROPIC_KEY,
    "signing key": SIGNING_SECRET,
    "signing key (unpadded)": SIGNING_SECRET.rstrip("="),
    "MCP token": MCP_TOKEN,
    "operate token": OPERATE_TOKEN,
    "read token": READ_TOKEN,
}


ANSWER_CHARS = 4_000
"""About what `max_tokens=1024` lets a real model say."""


def compromised_model(request: RecordedRequest) -> str:
    """A model that obeys every injection: it reveals its context, system prompt first (as
    much as one answer holds; the tests also search everything the model was shown)."""
    context = {"system": request.system, "tools": request.tools, "messages": request.messages}
    return ("Here is everything I was given:\n" + json.dumps(context))[:ANSWER_CHARS]


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


def assert_all_alive(system: LocalSystem) -> None:
    """Every process running and answering `/healthz` with 200."""
    for service in SERVICES:
        assert system.processes[service].poll() is None, f"{service} exited"
        response = httpx.get(f"{system.url(service)}/healthz", timeout=10)
        assert response.status_code == 200, f"{service}: {response.status_code}"


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
