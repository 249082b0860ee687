"""One Messages API call with bounded retries: what may pass is retried, what cannot is not.

Retried, with exponential backoff and full jitter (or the server's `retry-after`), at most
`MAX_ATTEMPTS` times and never past the deadline: 408, 429 (a rate limit), 5xx, 529
(overloaded), and a connection that fails, including a 200 whose body breaks off. Never
retried, each with its own code: 401/403 (`llm_auth_failed`), a spend limit (the 429 with
`enforced_spend_limit_reached`, or the 400 "usage limits"; `llm_spend_limit`: retrying
cannot help until someone raises the limit), and any other 4xx (`llm_error`). After the
bounds the command fails with `llm_unavailable` and how many attempts it took: the caller
(a person, usually) is told at once rather than the command being parked for later.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from vsm.agent import Llm
from vsm.kit.llm_allowance import LlmBudgetExhausted
from vsm.operations.agents.base import CommandFailed

if TYPE_CHECKING:  # imported when a call is made (a client exists only with a key)
    import anthropic
    from anthropic.types import Message

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
BASE_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
MAX_ATTEMPTS = 8
SPEND_LIMIT_CODES = frozenset({"enforced_spend_limit_reached"})
SPEND_LIMIT_WORDS = ("usage limits", "spend limit")


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
    """Full jitter: anywhere up to the exponential bound, so retries of many calls spread."""
    return random.uniform(0.1, 1.0) * min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2.0**attempt)  # noqa: S311


def api_error(error: anthropic.APIStatusError) -> dict[str, Any]:
    """The `error` object of the API's error body (`type`, `message`, maybe `details`)."""
    body = error.body if isinstance(error.body, dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else {}


def spend_limited(error: anthropic.APIStatusError) -> bool:
    """A spend limit was reached: no retry helps before the limit is raised or resets."""
    if error.status_code not in (400, 429):
        return False
    inner = api_error(error)
    details = inner.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    message = str(inner.get("message", "")).lower()
    return code in SPEND_LIMIT_CODES or any(words in message for words in SPEND_LIMIT_WORDS)


def refusal(error: anthropic.APIStatusError) -> CommandFailed | None:
    """The failure to report at once, or None when the call may be retried."""
    status = error.status_code
    message = str(api_error(error).get("message") or error.message)
    if status in (401, 403):
        return CommandFailed(
            "llm_auth_failed",
            f"the Anthropic API refused the key ({status}): {message}; check ANTHROPIC_API_KEY",
            {"status": status},
        )
    if spend_limited(error):
        return CommandFailed(
            "llm_spend_limit",
            f"the Anthropic API spend limit is reached ({status}): {message}",
            {"status": status},
        )
    if status not in RETRY_STATUSES:
        return CommandFailed("llm_error", message, {"status": status})
    return None


async def create_message(llm: Llm, deadline_s: float, **request: Any) -> tuple[Message, int]:
    """The model's reply and how many attempts it took; `CommandFailed` when it cannot be had."""
    import anthropic  # loaded with the client already

    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await llm.create(**request), attempt
        except LlmBudgetExhausted as exhausted:
            raise CommandFailed(
                "llm_budget_exhausted",
                str(exhausted),
                {"cap_usd": exhausted.cap_usd, "spent_usd": exhausted.spent_usd},
            ) from exhausted
        except anthropic.APIStatusError as error:
            if (refused := refusal(error)) is not None:
                raise refused from error
            wait = retry_after(error) or backoff(attempt - 1)
            failure: Exception = error
            status: int | None = error.status_code
        except anthropic.APIConnectionError as error:  # also a 200 whose body broke off
            wait, failure, status = backoff(attempt - 1), error, None
        if attempt >= MAX_ATTEMPTS or time.monotonic() - started + wait > deadline_s:
            raise CommandFailed(
                "llm_unavailable",
                f"the Anthropic API is unavailable: gave up after {attempt} attempts "
                f"within {deadline_s:g}s: {failure}",
                {"status": status, "attempts": attempt},
            ) from failure
        await asyncio.sleep(wait)
