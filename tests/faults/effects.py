"""An outside service with a side effect that must happen once: a loopback HTTP ledger.

`POST /effects` with an `Idempotency-Key` header applies its effect (one ledger entry) the
first time a key is seen and answers the stored response to every later call with that key,
the way payment APIs treat idempotency keys. It counts calls and effects per key, and can
hold the response of the n-th effect until the test releases it, so a test can kill the
caller after the effect and before the caller hears of it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from tests.support.loopback import Handler, LoopbackFake


class EffectLedger(LoopbackFake):
    label = "effect-ledger"

    def __init__(self, hold_at: int | None = None, delay_s: float = 0.0) -> None:
        """`hold_at`: hold the answer to the n-th effect until `release` is set; `delay_s`:
        answer every call that late (an effect that takes time)."""
        super().__init__()
        self.delay_s = delay_s
        self.calls: Counter[str] = Counter()
        self.effects: Counter[str] = Counter()
        self.unkeyed = 0
        self.hold_at = hold_at
        self.held = threading.Event()
        """Set when the `hold_at`-th effect is done and its response is being held."""
        self.release = threading.Event()
        self.held_key: str | None = None
        self.answering: set[str] = set()
        """Keys whose effect is done and whose answer is not sent yet."""
        self._answers: dict[str, dict[str, Any]] = {}
        self._closing = threading.Event()
        self._lock = threading.Lock()

    def _on_close(self) -> None:
        self._closing.set()
        self.release.set()

    def _handle(self, handler: Handler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        key = handler.headers.get("idempotency-key")
        hold = False
        with self._lock:
            if key is None:
                self.unkeyed += 1
                answer: dict[str, Any] = {"applied": True, "entry": None}
            else:
                self.calls[key] += 1
                if key not in self._answers:
                    self.effects[key] += 1
                    entry = sum(self.effects.values())
                    self._answers[key] = {"applied": True, "entry": entry}
                    hold = entry == self.hold_at
                    if hold:
                        self.held_key = key
                answer = self._answers[key]
                self.answering.add(key)
        try:
            if hold:
                self.held.set()
                self.release.wait(timeout=60)
            elif self.delay_s:
                self._closing.wait(timeout=self.delay_s)  # a sleep that close() cuts short
            data = json.dumps({**answer, "echo": json.loads(body or b"null")}).encode()
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        finally:
            with self._lock:
                self.answering.discard(key or "")

    @property
    def repeated_calls(self) -> int:
        """Calls beyond the first per key: retries and redeliveries the ledger absorbed."""
        return sum(self.calls.values()) - len(self.calls)
