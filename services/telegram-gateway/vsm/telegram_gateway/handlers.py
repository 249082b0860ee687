"""AMQP intake of the bot: operator alerts and approval requests from S5, and work on
`vsm.telegram.commands`.

Without a bot (no `TELEGRAM_BOT_TOKEN`) nothing can be delivered, so each message is
dead-lettered with reason `bot_disabled`: parked where operators can see it, never dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vsm.contract import topology
from vsm.contract.approvals import ApprovalRequested
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.system5 import OperatorAlert
from vsm.contract.telegram import TELEGRAM_COMMANDS, ChatMessage, TelegramUpdate
from vsm.kit.bus import Bus

if TYPE_CHECKING:
    from vsm.telegram_gateway.bot import TelegramBot

DISABLED = Unprocessable("bot_disabled", "no TELEGRAM_BOT_TOKEN: the Telegram bot is off")


def running(bot: TelegramBot | None) -> TelegramBot:
    if bot is None:
        raise DISABLED
    return bot


def operators_desk(bot: TelegramBot | None) -> TelegramBot:
    """The bot, when it has operator chats to tell."""
    desk = running(bot)
    if not desk.gate.operators:
        raise Unprocessable("no_operator_chats", "TELEGRAM_OPERATOR_CHAT_IDS is empty")
    return desk


def subscribe(bus: Bus, bot: TelegramBot | None) -> None:
    @bus.handle(topology.OPERATOR_ALERTS, OperatorAlert)
    async def on_alert(envelope: Envelope[OperatorAlert]) -> None:
        """Tell the operators' chats, with a button that acknowledges the alert."""
        await operators_desk(bot).alert(envelope)

    @bus.handle(topology.OPERATOR_APPROVALS, ApprovalRequested)
    async def on_approval_requested(envelope: Envelope[ApprovalRequested]) -> None:
        """Ask the operators' chats, with Approve and Reject buttons."""
        await operators_desk(bot).request_approval(envelope)

    @bus.handle(TELEGRAM_COMMANDS, TelegramUpdate)
    async def on_update(envelope: Envelope[TelegramUpdate]) -> None:
        """An update Telegram posted to the webhook: handled like a polled one."""
        try:
            await running(bot).process(envelope.data.update)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise Unprocessable("invalid_update", repr(error)[:1024]) from error

    @bus.handle(TELEGRAM_COMMANDS, ChatMessage)
    async def on_chat_message(envelope: Envelope[ChatMessage]) -> None:
        """Another system asks the bot to tell an allowed chat something."""
        teller = running(bot)
        from telegram.error import BadRequest  # loaded with the bot already

        message = envelope.data
        if not teller.gate.is_allowed(message.chat_id):
            raise Unprocessable("chat_not_allowed", f"chat {message.chat_id} is not allowed")
        await teller.ready.wait()
        try:
            await teller.say(message.chat_id, message.text)
        except BadRequest as error:  # e.g. chat not found: retrying will not help
            raise Unprocessable("telegram_rejected", str(error)) from error
