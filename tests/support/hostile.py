"""The hostile-input system's secrets (each distinctive, to be searched for), its one allowed
chat, the compromised model that repeats its context, and the check that every service lives.
"""

from __future__ import annotations

import json
import secrets

import httpx

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import secret
from tests.support.fake_anthropic import RecordedRequest
from tests.support.tokens import OPERATE_TOKEN, READ_TOKEN

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


def assert_all_alive(system: LocalSystem) -> None:
    """Every process running and answering `/healthz` with 200."""
    for service in SERVICES:
        assert system.processes[service].poll() is None, f"{service} exited"
        response = httpx.get(f"{system.url(service)}/healthz", timeout=10)
        assert response.status_code == 200, f"{service}: {response.status_code}"
