"""One Messages API call with an explicit retry deadline: 429/529/5xx retried, 401 never."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import Message

from vsm.operations.agents.base import CommandFailed

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
BASE_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0


def retry_after(error: anthropic.APIStatusError) -> float | None:
    """The server's own wait hint, in seconds (`retry-after-ms` first, as the SDK does)."""
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None


def backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311


async def create_message(
    client: AsyncAnthropic, deadline_s: float, **request: Any
) -> tuple[Message, int]:
    """The model's reply and how many attempts it took; `CommandFailed` when it cannot be had."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await client.messages.create(**request), attempt
        except anthropic.AuthenticationError as error:
            raise CommandFailed("llm_auth_failed", error.message, {"status": 401}) from error
        except anthropic.APIStatusError as error:
            if error.status_code not in RETRY_STATUSES:
                raise CommandFailed(
                    "llm_error", error.message, {"status": error.status_code}
                ) from error
            wait = retry_after(error) or backoff(attempt - 1)
            failure: Exception = error
            status: int | None = error.status_code
        except anthropic.APIConnectionError as error:
            wait, failure, status = backoff(attempt - 1), error, None
        if time.monotonic() - started + wait > deadline_s:
            raise CommandFailed(
                "llm_unavailable",
                f"gave up after {attempt} attempts within {deadline_s:g}s: {failure}",
                {"status": status, "attempts": attempt},
            ) from failure
        await asyncio.sleep(wait)
