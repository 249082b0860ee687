"""A fake Anthropic Messages API: a real HTTP server on loopback, run in a background thread.

Why a server and not a mock: the code under test (an llm_worker agent, S5 policy synthesis, the
Telegram bot) talks to Claude through the real `anthropic` SDK, often from another process. Serving
the real wire format on a real socket exercises what a patched client would hide: the SDK's
headers, its retry loop (which reads `retry-after-ms`, `retry-after` and `x-should-retry`), its
error classes, its SSE parser, and the service's own wiring of `base_url` / `ANTHROPIC_BASE_URL`.

Usage::

    with FakeAnthropic() as fake:
        fake.fail_times(2).reply_text("hello")  # two 529s, then a reply
        client = anthropic.Anthropic(base_url=fake.url, api_key="test-key")
        ...
        assert fake.requests[-1].model == "claude-haiku-4-5"

Responses are scripted in order (FIFO); when the script is empty a default reply answers (an echo
of the last user message unless configured). Requests the real API would reject (no credentials,
no `anthropic-version`, no model / max_tokens / messages) are answered with the real error shape
and do not consume the script, so a client bug shows up as the error it would get in production.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from tests.support.loopback import Handler, LoopbackFake

__all__ = ["FakeAnthropic", "RecordedRequest"]

_log = logging.getLogger(__name__)

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

# The error `type` the real API sends with each status, so `fail(529)` needs no more arguments.
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DefaultReply = str | Callable[["RecordedRequest"], str] | None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, for assertions on what the client really sent."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: dict[str, Any]
    """The parsed JSON body; `{}` when there was none or it was not a JSON object."""
    at: float = 0.0
    """When it arrived (`time.monotonic()`), to measure the pauses between retries."""

    @property
    def api_key(self) -> str | None:
        """The credential sent: `x-api-key`, else a `Authorization: Bearer` token.

        anthropic 2.x sends `api_key` as `Authorization: Bearer <key>`, not as `x-api-key`.
        """
        if key := self.headers.get("x-api-key"):
            return key
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    @property
    def model(self) -> Any:
        return self.body.get("model")

    @property
    def system(self) -> Any:
        return self.body.get("system")

    @property
    def messages(self) -> Any:
        return self.body.get("messages")

    @property
    def tools(self) -> Any:
        return self.body.get("tools")

    @property
    def max_tokens(self) -> Any:
        return self.body.get("max_tokens")

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True)
class _Reply:
    content: tuple[dict[str, Any], ...]
    stop_reason: str
    usage: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class _Failure:
    status: int
    error_type: str
    message: str
    headers: tuple[tuple[str, str], ...]
    details: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class _Break:
    """A 200 whose body stops early: dropped, or ended by an SSE `error` event if `error_type`."""

    text: str
    error_type: str | None
    message: str


_Step = _Reply | _Failure | _Break


class _RejectedError(Exception):
    """A request the real API would refuse before the model sees it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeAnthropic(LoopbackFake):
    """The Messages API on `http://127.0.0.1:<free port>`, scripted per test.

    Use as a context manager (or `start()` / `close()`). `close()` stops the server, ends the
    clients' keep-alive connections and joins every thread it started, so nothing outlives it.
    All methods are thread-safe; the script methods return `self` so they chain.
    """

    label = "fake-anthropic"

    def __init__(
        self,
        *,
        default_reply: DefaultReply = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`default_reply` answers when the script is empty: fixed text, a function of the
        request, or `None` to echo the last user message. `api_key`, when given, is the only
        credential accepted (others get 401); otherwise any non-empty one is."""
        self.default_reply: DefaultReply = default_reply
        self.default_usage: Mapping[str, int] | None = None
        """The `usage` of default replies (None: estimated from the text, as `reply_text`)."""
        self._api_key = api_key
        super().__init__(host)
        self._lock = threading.Condition()
        self._script: deque[_Step] = deque()
        self._requests: list[RecordedRequest] = []

    def env(self, api_key: str = "test-key") -> dict[str, str]:
        """Environment for a service started as a subprocess, so its SDK client finds the fake."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": api_key}

    # --- what was received -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (all paths, rejected ones too), oldest first."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; for services calling from elsewhere."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self._requests)}")
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Scripted responses not yet served."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script and the received requests (the default reply stays)."""
        with self._lock:
            self._script.clear()
            self._requests.clear()

    # --- the script ------------------------------------------------------------------------

    def reply_text(
        self, text: str, *, stop_reason: str = "end_turn", usage: Mapping[str, int] | None = None
    ) -> Self:
        """Queue an assistant message with one text block.

        `usage` replaces counts of the reply's `usage` (`input_tokens`, `output_tokens`,
        `cache_creation_input_tokens`, `cache_read_input_tokens`); by default input and
        output are estimated from the text (about 4 characters a token) and the cache's are 0.
        """
        usage_items = tuple((usage or {}).items())
        return self._push(_Reply(({"type": "text", "text": text},), stop_reason, usage_items))

    def reply_tool_use(
        self,
        name: str,
        input: Mapping[str, Any],
        text: str | None = None,
        *,
        tool_id: str | None = None,
        usage: Mapping[str, int] | None = None,
    ) -> Self:
        """Queue a `tool_use` turn (`stop_reason: "tool_use"`), after an optional text block.

        The block's id is generated (`toolu_...`) unless `tool_id` is given; `usage` as for
        `reply_text`.
        """
        block = {
            "type": "tool_use",
            "id": tool_id or f"toolu_{secrets.token_hex(12)}",
            "name": name,
            "input": dict(input),
        }
        content = ({"type": "text", "text": text}, block) if text is not None else (block,)
        return self._push(_Reply(content, "tool_use", tuple((usage or {}).items())))

    def fail(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        *,
        should_retry: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Self:
        """Queue an error response in the API's shape `{"type":"error","error":{...}}`.

        `error_type` defaults to the API's type for `status` (529 -> overloaded_error).
        `retry_after` (seconds, fractions allowed) is sent as `retry-after-ms`, which the SDK
        prefers, and as a whole-second `retry-after` as the real API does. `should_retry` sends
        `x-should-retry`, which overrides the SDK's status-based retry decision. `details` goes
        into the error object (e.g. `{"error_code": "enforced_spend_limit_reached"}`).
        """
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            headers.append(("retry-after-ms", str(round(retry_after * 1000))))
            headers.append(("retry-after", str(math.ceil(retry_after))))
        if should_retry is not None:
            headers.append(("x-should-retry", "true" if should_retry else "false"))
        error_type = error_type or _ERROR_TYPES.get(status, "api_error")
        text = message or f"{error_type} (FakeAnthropic)"
        extra = tuple((details or {}).items())
        return self._push(_Failure(status, error_type, text, tuple(headers), extra))

    def spend_limit(self, count: int = 1) -> Self:
        """Queue the API's answer once an organisation's spend limit is reached: a 429
        `rate_limit_error` with `details.error_code` `enforced_spend_limit_reached` and no
        `retry-after` (access resumes when the limit is raised or the month turns)."""
        for _ in range(count):
            self.fail(
                429,
                "rate_limit_error",
                "You have reached your specified API usage limits. You will regain access on "
                "the first day of next month at 00:00 UTC.",
                details={"error_code": "enforced_spend_limit_reached"},
            )
        return self

    def fail_times(
        self,
        count: int,
        status: int = 529,
        error_type: str | None = None,
        message: str | None = None,
        retry_after: float | None = 0.01,
    ) -> Self:
        """Queue `count` identical failures; chain a reply after it: `fail_times(2).reply_text(..)`.

        `retry_after` defaults to 10 ms so the SDK's retries do not sleep its 0.5 s+ backoff.
        """
        for _ in range(count):
            self.fail(status, error_type, message, retry_after)
        return self

    def fail_stream_midway(
        self,
        text: str = "Partial answ",
        *,
        error_type: str | None = None,
        message: str = "Overloaded",
    ) -> Self:
        """Queue a 200 that breaks off after `text` has been streamed.

        By default the connection is dropped mid-body (an incomplete chunked body; for a
        non-streaming request, half the JSON). With `error_type` (e.g. "overloaded_error") the
        stream instead ends with the SSE `error` event the real API sends for mid-stream faults.
        """
        return self._push(_Break(text, error_type, message))

    def _push(self, step: _Step) -> Self:
        with self._lock:
            self._script.append(step)
        return self

    # --- serving (runs on handler threads) -------------------------------------------------

    def _handle(self, handler: Handler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw) if raw else None
        request = RecordedRequest(
            method=handler.command,
            path=handler.path.split("?", 1)[0],
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=parsed if isinstance(parsed, dict) else {},
            at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

        try:
            if request.method != "POST" or request.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
                raise _RejectedError(404, f"Not found: {request.method} {request.path}")
            self._check(request, raw, parsed)
        except _RejectedError as rejected:
            status = rejected.status
            _send_error(handler, status, _ERROR_TYPES[status], rejected.message, ())
            return

        if request.path == COUNT_TOKENS_PATH:
            _send_json(handler, 200, {"input_tokens": _input_tokens(request.body)})
            return

        with self._lock:
            step = self._script.popleft() if self._script else None
        if step is None:
            usage = tuple((self.default_usage or {}).items())
            text = {"type": "text", "text": self._default_text(request)}
            step = _Reply((text,), "end_turn", usage)

        if isinstance(step, _Failure):
            _send_error(
                handler, step.status, step.error_type, step.message, step.headers, step.details
            )
        elif isinstance(step, _Reply):
            message = _message(request, step.content, step.stop_reason, dict(step.usage))
            if request.stream:
                _send_sse(handler, _stream_events(message), complete=True)
            else:
                _send_json(handler, 200, message)
        else:
            _send_break(handler, request, step)

    def _check(self, request: RecordedRequest, raw: bytes, parsed: Any) -> None:
        """The basic checks the real API makes, in its order: auth, version, then the body."""
        if request.api_key is None:
            raise _RejectedError(401, "x-api-key header is required")
        if self._api_key is not None and request.api_key != self._api_key:
            raise _RejectedError(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            raise _RejectedError(400, "anthropic-version: header is required")
        if not isinstance(parsed, dict):
            reason = "body must be a JSON object" if raw else "request body is empty"
            raise _RejectedError(400, f"There was an error parsing the body: {reason}")
        _check_body(request.path, parsed)

    def _default_text(self, request: RecordedRequest) -> str:
        reply = self.default_reply
        if reply is None:
            return _last_user_text(request.body)
        return reply if isinstance(reply, str) else reply(request)


# --- wire format ------------------------------------------------------------------------------


def _send_json(
    handler: Handler,
    status: int,
    payload: Mapping[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.send_header("request-id", _new_id("req"))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _send_error(
    handler: Handler,
    status: int,
    error_type: str,
    message: str,
    headers: tuple[tuple[str, str], ...],
    details: tuple[tuple[str, Any], ...] = (),
) -> None:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details:
        error["details"] = dict(details)
    body = {"type": "error", "error": error, "request_id": _new_id("req")}
    _send_json(handler, status, body, headers)


def _send_sse(handler: Handler, events: Iterator[tuple[str, Any]], *, complete: bool) -> None:
    """A 200 `text/event-stream` in chunked encoding; `complete=False` drops it unterminated."""
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream; charset=utf-8")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("transfer-encoding", "chunked")
    handler.send_header("request-id", _new_id("req"))
    handler.end_headers()
    for name, data in events:
        chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    if complete:
        handler.wfile.write(b"0\r\n\r\n")
    else:
        handler.close_connection = True  # the server then closes the socket mid-body


def _send_break(handler: Handler, request: RecordedRequest, step: _Break) -> None:
    message = _message(request, ({"type": "text", "text": step.text},), "end_turn")
    if not request.stream:
        data = json.dumps(message).encode()
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("request-id", _new_id("req"))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.close_connection = True
        return
    events = list(_stream_events(message))[:-3]  # up to the text: no block stop, no message end
    if step.error_type is None:
        _send_sse(handler, iter(events), complete=False)
        return
    error = {"type": "error", "error": {"type": step.error_type, "message": step.message}}
    _send_sse(handler, iter([*events, ("error", error)]), complete=True)


def _message(
    request: RecordedRequest,
    content: tuple[dict[str, Any], ...],
    stop_reason: str,
    usage: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    output = sum(_estimate_tokens(json.dumps(block)) for block in content)
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [dict(block) for block in content],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": _input_tokens(request.body),
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
            **(usage or {}),
        },
    }


def _stream_events(message: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The SSE events the real API sends for `message`, text in word-sized deltas."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in _pieces(block["text"])]
        else:
            opening = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opening,
            },
        )
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _pieces(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
    return "\n".join(parts)


def _input_tokens(body: Mapping[str, Any]) -> int:
    prompt = {key: body.get(key) for key in ("system", "messages", "tools")}
    return _estimate_tokens(json.dumps(prompt))


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _check_body(path: str, body: dict[str, Any]) -> None:
    """The body's checks, as the real API words them."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _RejectedError(400, "model: Field required")
    if path == MESSAGES_PATH:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _RejectedError(400, "max_tokens: Field required")
        if max_tokens < 1:
            raise _RejectedError(400, "max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _RejectedError(400, "messages: Field required")
    if not messages:
        raise _RejectedError(400, "messages: at least one message is required")
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            raise _RejectedError(
                400, f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        if "content" not in item:
            raise _RejectedError(400, f"messages.{index}.content: Field required")
    if "tools" in body and not isinstance(body["tools"], list):
        raise _RejectedError(400, "tools: Input should be a valid list")
