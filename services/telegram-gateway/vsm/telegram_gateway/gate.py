"""Who may talk to the bot, and each update processed once.

Chats on the allow-list (operators are always on it) reach the system; any other chat gets
one polite refusal, then silence, and nothing it says reaches the system. The strangers
refused are remembered up to a bound (the latest `refused_limit`): one forgotten is refused
once more, rather than the memory growing with every chat that ever wrote.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

REFUSAL = (
    "Sorry, this bot only talks to the chats it was set up for. "
    "Ask the operators to add this chat if you need access."
)
Admission = Literal["allowed", "refuse", "ignore"]


class ChatGate:
    def __init__(
        self, allowed: frozenset[int], operators: frozenset[int], refused_limit: int = 10_000
    ) -> None:
        self.allowed = allowed | operators
        self.operators = operators
        self.refused_limit = refused_limit
        self._refused: OrderedDict[int, None] = OrderedDict()

    def admit(self, chat_id: int | None) -> Admission:
        """`refuse` the first time a stranger writes (send `REFUSAL`), `ignore` afterwards."""
        if chat_id is not None and chat_id in self.allowed:
            return "allowed"
        if chat_id is None:
            return "ignore"
        if chat_id in self._refused:
            self._refused.move_to_end(chat_id)
            return "ignore"
        self._refused[chat_id] = None
        if len(self._refused) > self.refused_limit:
            self._refused.popitem(last=False)
        return "refuse"

    def is_allowed(self, chat_id: int) -> bool:
        return chat_id in self.allowed

    def is_operator(self, chat_id: int | None) -> bool:
        return chat_id is not None and chat_id in self.operators


class UpdateLog:
    """The update ids seen lately: Telegram redelivers (webhook retries, polling restarts)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[int, None] = OrderedDict()

    def first_time(self, update_id: int) -> bool:
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True
