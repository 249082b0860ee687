"""A fake Telegram Bot API: a real HTTP server on loopback, run in a background thread.

Why a server and not a mock: the telegram-gateway talks to Telegram through the real
`python-telegram-bot`, from another process. Serving the Bot API's wire format on a real socket
exercises what a patched client would hide: PTB's form encoding, its long polling and offsets,
its `RetryAfter` on 429 with `parameters.retry_after`, and the service's own `base_url` wiring.

Usage::

    with FakeTelegram() as fake:
        # start the service with fake.env() in its environment, then:
        fake.send(chat_id=42, text="/status")          # a person writes to the bot
        [reply] = fake.wait_for_messages(42, count=1)   # what the bot answered
        fake.rate_limit("sendMessage", retry_after=1)   # the next sendMessage gets a 429

Implemented methods: getMe, getUpdates (long poll; the test enqueues updates), sendMessage
(4096 characters at most, as the real API), sendChatAction, setMyCommands, getMyCommands,
answerCallbackQuery, editMessageText, editMessageReplyMarkup, deleteWebhook, setWebhook,
getWebhookInfo, close, logOut. Anything else answers the real 404 shape.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs

from tests.support.loopback import Handler, LoopbackFake

__all__ = ["ApiCall", "FakeTelegram"]

_log = logging.getLogger(__name__)

MAX_TEXT = 4096
STRING_PARAMS = frozenset(
    {"text", "url", "secret_token", "callback_query_id", "parse_mode", "action", "data"}
)
"""Parameters PTB sends as plain strings (everything else is JSON-encoded, e.g. `chat_id`)."""


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call as the fake received it."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 200


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class FakeTelegram(LoopbackFake):
    """The Bot API on `http://127.0.0.1:<free port>/bot<token>/<method>`, scripted per test.

    `close()` wakes long polls, stops the server and joins every thread it started.
    """

    label = "fake-telegram"

    def __init__(self, *, token: str = "123456:FAKE-telegram-token", host: str = "127.0.0.1"):
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "vsm",
            "username": "vsm_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        super().__init__(host)
        self._lock = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._calls: list[ApiCall] = []
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._limits: dict[str, deque[int]] = defaultdict(deque)
        self._closing = False
        self.commands: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def _on_start(self) -> None:
        self._closing = False

    def _on_close(self) -> None:
        with self._lock:  # wake long polls so their threads can finish
            self._closing = True
            self._lock.notify_all()

    def env(self) -> dict[str, str]:
        """Environment for the telegram-gateway started as a subprocess."""
        return {"TELEGRAM_BOT_TOKEN": self.token, "TELEGRAM_API_BASE_URL": self.url}

    # --- what people do --------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates as it is (a repeated update_id stays repeated)."""
        with self._lock:
            self._updates.append(update)
            self._lock.notify_all()
        return update

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        username: str = "alice",
        edited: bool = False,
    ) -> dict[str, Any]:
        """An update for `text` written in `chat_id`; a leading `/word` is a bot command.

        `edited=True` makes it an `edited_message` (a person corrected an earlier message).
        """
        message: dict[str, Any] = {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": {
                "id": user_id or abs(chat_id),
                "is_bot": False,
                "first_name": username.title(),
                "username": username,
            },
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if edited:
            message["edit_date"] = message["date"]
        kind = "edited_message" if edited else "message"
        return {"update_id": next(self._update_ids), kind: message}

    def send(self, chat_id: int, text: str, **options: Any) -> dict[str, Any]:
        """A person writes `text` in `chat_id`; the update is queued for the bot."""
        return self.push_update(self.message_update(chat_id, text, **options))

    def press(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
    ) -> dict[str, Any]:
        """A person presses an inline button with `data` under the bot's message."""
        with self._lock:
            message = dict(self._messages.get((chat_id, message_id)) or {})
        message = message or {"message_id": message_id, "date": 0, "chat": _chat(chat_id)}
        update = {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": f"cq{next(self._update_ids)}",
                "from": {
                    "id": user_id or abs(chat_id),
                    "is_bot": False,
                    "first_name": "Op",
                    "username": "operator",
                },
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            },
        }
        return self.push_update(update)

    # --- scripted trouble -------------------------------------------------------------------

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> Self:
        """The next `times` calls of `method` get 429 with `parameters.retry_after`."""
        with self._lock:
            self._limits[method].extend([retry_after] * times)
        return self

    # --- what the bot did ------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (accepted ones only), oldest first, as the API returned them."""
        with self._lock:
            messages = sorted(self._messages.values(), key=lambda m: m["_seq"])
        return [m for m in messages if chat_id is None or m["chat"]["id"] == chat_id]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until `condition()` holds (checked after every call the bot makes)."""
        with self._lock:
            if not self._lock.wait_for(condition, timeout):
                raise TimeoutError("FakeTelegram: condition not met in time")

    def wait_for_messages(
        self, chat_id: int, count: int, timeout: float = 10.0, *, after: int = 0
    ) -> list[dict[str, Any]]:
        """At least `count` messages sent to `chat_id` beyond the first `after`; those."""

        def enough() -> bool:
            return len(self._sent_unlocked(chat_id)) >= after + count

        with self._lock:
            if not self._lock.wait_for(enough, timeout):
                got = [m["text"] for m in self._sent_unlocked(chat_id)[after:]]
                raise TimeoutError(f"expected {count} messages to {chat_id}, got {got}")
            return self._sent_unlocked(chat_id)[after:]

    def _sent_unlocked(self, chat_id: int) -> list[dict[str, Any]]:
        messages = sorted(self._messages.values(), key=lambda m: m["_seq"])
        return [m for m in messages if m["chat"]["id"] == chat_id]

    # --- serving (runs on handler threads) -------------------------------------------------

    def _handle(self, handler: Handler) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        prefix = f"/bot{self.token}/"
        if not path.startswith("/bot"):
            _send(handler, 404, _error(404, "Not Found"))
            return
        if not path.startswith(prefix):
            _send(handler, 401, _error(401, "Unauthorized"))
            return
        method = path[len(prefix) :]
        params = _params(handler.headers.get("content-type", ""), raw)
        try:
            status, result = 200, self._call(method, params)
            payload: dict[str, Any] = {"ok": True, "result": result}
        except _ApiError as error:
            status = error.status
            payload = _error(error.status, error.description, error.parameters)
        with self._lock:
            self._calls.append(ApiCall(method, params, status=status))
            self._lock.notify_all()
        _send(handler, status, payload)

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            limits = self._limits.get(method)
            if limits:
                retry_after = limits.popleft()
                raise _ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
        api = _METHODS.get(method)
        if api is None:
            raise _ApiError(404, "Not Found")
        return api(self, params)

    def _get_me(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    def _get_updates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        with self._lock:
            if offset:  # updates below the offset are confirmed: Telegram forgets them
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self._lock.wait_for(lambda: bool(self._updates) or self._closing, timeout)
            return self._updates[:limit]

    def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id = _required(params, "chat_id")
        text = str(_required(params, "text"))
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        with self._lock:
            message: dict[str, Any] = {
                "message_id": next(self._message_ids[chat_id]),
                "date": int(time.time()),
                "chat": _chat(chat_id),
                "from": self.bot_user,
                "text": text,
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self._store(message)
        return _public(message)

    def _store(self, message: dict[str, Any]) -> None:
        key = (message["chat"]["id"], message["message_id"])
        known = self._messages.get(key)
        message["_seq"] = known["_seq"] if known else len(self._messages)
        self._messages[key] = message

    def _edit(self, params: dict[str, Any], changes: dict[str, Any]) -> Any:
        chat_id, message_id = _required(params, "chat_id"), _required(params, "message_id")
        with self._lock:
            known = self._messages.get((chat_id, message_id))
            if known is None:
                raise _ApiError(400, "Bad Request: message to edit not found")
            edited = {k: v for k, v in known.items() if k != "reply_markup"} | changes
            if params.get("reply_markup"):
                edited["reply_markup"] = params["reply_markup"]
            edited["edit_date"] = int(time.time())
            self._store(edited)
        return _public(edited)

    def _edit_text(self, params: dict[str, Any]) -> Any:
        text = str(_required(params, "text"))
        if len(text) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return self._edit(params, {"text": text})

    def _edit_markup(self, params: dict[str, Any]) -> Any:
        return self._edit(params, {})

    def _set_commands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands must be a list")
        with self._lock:
            self.commands = commands
        return True

    def _get_commands(self, params: dict[str, Any]) -> Any:
        with self._lock:
            return list(self.commands)

    def _set_webhook(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self.webhook = dict(params)
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self.webhook = None
        return True

    def _webhook_info(self, params: dict[str, Any]) -> Any:
        with self._lock:
            url = (self.webhook or {}).get("url", "")
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _true(self, params: dict[str, Any]) -> Any:
        return True

    def _answer_callback(self, params: dict[str, Any]) -> Any:
        _required(params, "callback_query_id")
        return True

    def _chat_action(self, params: dict[str, Any]) -> Any:
        _required(params, "chat_id")
        _required(params, "action")
        return True


_METHODS: dict[str, Callable[[FakeTelegram, dict[str, Any]], Any]] = {
    "getMe": FakeTelegram._get_me,
    "getUpdates": FakeTelegram._get_updates,
    "sendMessage": FakeTelegram._send_message,
    "sendChatAction": FakeTelegram._chat_action,
    "setMyCommands": FakeTelegram._set_commands,
    "getMyCommands": FakeTelegram._get_commands,
    "answerCallbackQuery": FakeTelegram._answer_callback,
    "editMessageText": FakeTelegram._edit_text,
    "editMessageReplyMarkup": FakeTelegram._edit_markup,
    "setWebhook": FakeTelegram._set_webhook,
    "deleteWebhook": FakeTelegram._delete_webhook,
    "getWebhookInfo": FakeTelegram._webhook_info,
    "close": FakeTelegram._true,
    "logOut": FakeTelegram._true,
}


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
    return {"id": chat_id, "type": "group", "title": f"group{-chat_id}"}


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _required(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise _ApiError(400, f"Bad Request: {name} is empty")
    return params[name]


def _params(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form fields (PTB JSON-encodes every non-string value) or a JSON object body."""
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else {}
    fields = parse_qs(raw.decode(), keep_blank_values=True)
    params: dict[str, Any] = {}
    for name, values in fields.items():
        value = values[-1]
        if name in STRING_PARAMS:
            params[name] = value
            continue
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def _error(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return payload


def _send(handler: Handler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
