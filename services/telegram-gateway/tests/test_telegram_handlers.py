"""The bot's AMQP intake in memory (vsm.kit.testing): without a bot, nothing is dropped.

Delivering to Telegram is tested against the fake Bot API server in the integration suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vsm.contract import topology
from vsm.contract.system5 import OperatorAlert
from vsm.contract.telegram import TELEGRAM_COMMANDS, ChatMessage
from vsm.kit.runtime import Runtime
from vsm.kit.testing import InMemory
from vsm.telegram_gateway import handlers
from vsm.telegram_gateway.settings import Settings


@pytest.fixture
async def no_bot() -> AsyncIterator[InMemory]:
    runtime = Runtime("telegram-gateway", Settings(log_format="console"))
    handlers.subscribe(runtime.bus, None)
    async with InMemory(runtime.bus) as memory:
        yield memory


async def test_without_a_bot_an_alert_is_parked_with_the_reason(no_bot: InMemory) -> None:
    alert = OperatorAlert(
        alert_id="a1",
        intervention_id="i1",
        severity="critical",
        title="pain",
        text="errors rising",
        pain_level=0.9,
        escalation_level=1,
    )
    await no_bot.send(alert, topology.OPERATOR_ALERTS)

    assert no_bot.dead_letters() == [("bot_disabled", topology.OPERATOR_ALERTS.name)]


async def test_without_a_bot_a_chat_message_is_parked_with_the_reason(no_bot: InMemory) -> None:
    await no_bot.send(ChatMessage(chat_id=42, text="hello"), TELEGRAM_COMMANDS)

    assert no_bot.dead_letters() == [("bot_disabled", TELEGRAM_COMMANDS.name)]


async def test_a_type_the_bot_does_not_take_is_parked_as_unexpected(no_bot: InMemory) -> None:
    await no_bot.send(
        b'{"specversion": "1.0", "type": "vsm.s5.policy.query.v1"}', TELEGRAM_COMMANDS
    )

    [(reason, queue)] = no_bot.dead_letters()
    assert (reason, queue) == ("unexpected_type", TELEGRAM_COMMANDS.name)
