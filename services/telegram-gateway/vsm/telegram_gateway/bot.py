"""The bot's handlers, thin: each decodes, calls a plain function and sends the answer.

The logic lives in `commands` (parsing), `system` (the AMQP request each command is),
`assistant` (free text), `gate` (allow-list, duplicates) and `delivery` (splitting, 429s);
the allow-list and the duplicate check run before any handler. Webhook updates arrive
through the broker (`webhook.py`, `handlers.py`) and are fed in by `process`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

import structlog
from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from vsm.contract.approvals import ApprovalReply, ApprovalRequested, DecideApproval
from vsm.contract.envelope import Envelope
from vsm.contract.system5 import AlertAcknowledgement, OperatorAlert
from vsm.kit.bus import Bus
from vsm.telegram_gateway import answers, commands, reports
from vsm.telegram_gateway.assistant import Assistant
from vsm.telegram_gateway.bot_api import (
    App,
    build_application,
    start_application,
    stop_application,
)
from vsm.telegram_gateway.delivery import send_text
from vsm.telegram_gateway.gate import REFUSAL, ChatGate, UpdateLog
from vsm.telegram_gateway.operators import (
    AlertButtons,
    acknowledged_by,
    approval_markup,
    approval_of,
)
from vsm.telegram_gateway.outlets import Outlets
from vsm.telegram_gateway.settings import Settings

log = structlog.get_logger("vsm.telegram.bot")
Context = ContextTypes.DEFAULT_TYPE
TYPING_EVERY_S = 4.0
RECENT_ALERTS = 1024
NEW = filters.UpdateType.MESSAGE
"""Edited messages are not commands again (an edited /spawn must not spawn twice)."""


class TelegramBot:
    """The handlers and what they share (allow-list, seen updates, recent alerts)."""

    def __init__(
        self, settings: Settings, bus: Bus, outlets: Outlets, assistant: Assistant
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.outlets = outlets
        self.assistant = assistant
        self.gate = ChatGate(
            settings.telegram_allowed_chat_ids, settings.telegram_operator_chat_ids
        )
        self.updates = UpdateLog()
        self.buttons = AlertButtons()
        self.alerts: OrderedDict[str, Envelope[OperatorAlert]] = OrderedDict()
        """Recent alerts, so an acknowledgement joins its alert's causation chain."""
        self.app: App | None = None
        self.ready = asyncio.Event()

    @property
    def mode(self) -> str:
        return "webhook" if self.settings.webhook else "polling"

    # Lifecycle (see `bot_api.py`) ----------------------------------------------------------
    async def start(self) -> None:
        self.app = build_application(self.settings, self.handlers(), self.admit, self.on_error)
        await start_application(self.app, self.settings)
        self.ready.set()
        log.info("telegram_bot_started", mode=self.mode)

    async def stop(self) -> None:
        app, self.app = self.app, None
        self.ready.clear()
        if app is not None:
            await stop_application(app)

    def handlers(self) -> list[BaseHandler[Any, Any, Any]]:
        """In order; the allow-list and duplicate check run first, in their own group."""
        return [
            CommandHandler(["start", "help"], self.on_help, filters=NEW),
            CommandHandler("status", self.on_status, filters=NEW),
            CommandHandler("viability", self.on_viability, filters=NEW),
            CommandHandler("agents", self.on_agents, filters=NEW),
            CommandHandler("spawn", self.on_spawn, filters=NEW),
            CommandHandler("signal", self.on_signal, filters=NEW),
            CommandHandler("policy", self.on_policy, filters=NEW),
            CommandHandler("ask", self.on_ask, filters=NEW),
            CallbackQueryHandler(self.on_button),
            MessageHandler(NEW & filters.COMMAND, self.on_unknown_command),
            MessageHandler(NEW & filters.TEXT & ~filters.COMMAND, self.on_text),
        ]

    async def process(self, raw: dict[str, Any]) -> None:
        """Handle one update that arrived over the webhook (through the broker)."""
        await self.ready.wait()
        assert self.app is not None
        await self.app.process_update(Update.de_json(raw, self.app.bot))

    # Before any handler: each update once, and only from chats on the allow-list ---------
    async def admit(self, update: Update, context: Context) -> None:
        if not self.updates.first_time(update.update_id):
            log.info("telegram_duplicate_update", update_id=update.update_id)
            raise ApplicationHandlerStop
        chat = update.effective_chat
        verdict = self.gate.admit(chat.id if chat else None)
        if verdict == "allowed":
            return
        if verdict == "refuse" and chat is not None:
            log.info("telegram_chat_refused", chat_id=chat.id)
            await self.say(chat.id, REFUSAL)
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        raise ApplicationHandlerStop

    # Commands ---------------------------------------------------------------------------
    async def on_help(self, update: Update, context: Context) -> None:
        await self.reply(update, commands.help_text())

    async def on_status(self, update: Update, context: Context) -> None:
        await self.reply_with(update, answers.status(self.bus))

    async def on_viability(self, update: Update, context: Context) -> None:
        await self.reply_with(update, answers.viability(self.bus))

    async def on_agents(self, update: Update, context: Context) -> None:
        await self.reply_with(update, answers.agents(self.bus))

    async def on_spawn(self, update: Update, context: Context) -> None:
        intent = commands.parse_spawn(context.args or [])
        if isinstance(intent, commands.Usage):
            await self.reply(update, intent.text)
        else:
            await self.reply_with(update, answers.spawn(self.bus, intent))

    async def on_signal(self, update: Update, context: Context) -> None:
        intent = commands.parse_signal(context.args or [])
        if isinstance(intent, commands.Usage):
            await self.reply(update, intent.text)
        else:
            await self.reply_with(
                update, answers.signal(self.outlets.algedonic, intent, _chat_id(update))
            )

    async def on_policy(self, update: Update, context: Context) -> None:
        intent = commands.parse_policy(context.args or [])
        if isinstance(intent, commands.Usage):
            await self.reply(update, intent.text)
        else:
            await self.reply_with(update, answers.policy(self.bus, intent))

    async def on_ask(self, update: Update, context: Context) -> None:
        await self.converse(update, " ".join(context.args or []))

    async def on_text(self, update: Update, context: Context) -> None:
        await self.converse(update, update.effective_message.text or "")  # type: ignore[union-attr]

    async def on_unknown_command(self, update: Update, context: Context) -> None:
        await self.reply(update, "I do not know that command.\n" + commands.help_text())

    async def converse(self, update: Update, text: str) -> None:
        intent = commands.parse_question(text)
        if isinstance(intent, commands.Usage):
            await self.reply(update, intent.text)
        else:
            await self.reply_with(update, self.assistant.chat(_chat_id(update), intent.text))

    # Operators ----------------------------------------------------------------------------
    async def alert(self, envelope: Envelope[OperatorAlert]) -> int:
        """Tell every operator chat; how many were told."""
        await self.ready.wait()
        alert = envelope.data
        self.alerts[alert.alert_id] = envelope
        while len(self.alerts) > RECENT_ALERTS:
            self.alerts.popitem(last=False)
        told = 0
        for chat_id in sorted(self.gate.operators):
            markup = self.buttons.markup(alert.alert_id)
            await self.say(chat_id, reports.alert_report(alert), markup=markup)
            told += 1
        return told

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        pressed = approval_of(query.data or "")
        if pressed is not None:
            await self.on_verdict(update, *pressed)
            return
        alert_id = self.buttons.alert_of(query.data or "")
        if alert_id is None or not self.gate.is_operator(_chat_id(update)):
            await query.answer("Only operators can acknowledge alerts.", show_alert=True)
            return
        by = acknowledged_by(query.from_user.username, query.from_user.id)
        ack = AlertAcknowledgement(alert_id=alert_id, by=by)
        await self.outlets.acknowledgements.publish(ack, cause=self.alerts.get(alert_id))
        await query.answer("Acknowledged")
        with contextlib.suppress(TelegramError):
            original = query.message.text if isinstance(query.message, Message) else ""
            await query.edit_message_text(f"{original}\n✅ Acknowledged by {by}")

    async def request_approval(self, envelope: Envelope[ApprovalRequested]) -> int:
        """Ask every operator chat to approve or reject; how many were asked."""
        await self.ready.wait()
        approval = envelope.data.approval
        for chat_id in sorted(self.gate.operators):
            markup = approval_markup(approval.approval_id)
            await self.say(chat_id, reports.approval_report(approval), markup=markup)
        return len(self.gate.operators)

    async def on_verdict(self, update: Update, approval_id: str, approve: bool) -> None:
        """An operator's Approve or Reject, decided by S5; anyone else's press is refused."""
        query = update.callback_query
        assert query is not None
        if not self.gate.is_operator(_chat_id(update)):
            await query.answer("Only operators can approve or reject.", show_alert=True)
            return
        by = acknowledged_by(query.from_user.username, query.from_user.id)
        decision = DecideApproval(approval_id=approval_id, approve=approve, by=by)
        try:
            await self.bus.query("queen", "approval.decide", decision, ApprovalReply)
        except answers.FAILURES as error:
            await query.answer(answers.failure(error)[:200], show_alert=True)
            return
        verdict = "Approved" if approve else "Rejected"
        await query.answer(verdict)
        with contextlib.suppress(TelegramError):
            original = query.message.text if isinstance(query.message, Message) else ""
            await query.edit_message_text(
                f"{original}\n{'✅' if approve else '❌'} {verdict} by {by}"
            )

    # Saying things ------------------------------------------------------------------------
    async def say(self, chat_id: int, text: str, **options: Any) -> None:
        assert self.app is not None
        await send_text(
            self.app.bot, chat_id, text, retries=self.settings.telegram_send_retries, **options
        )

    async def reply(self, update: Update, text: str) -> None:
        await self.say(_chat_id(update), text)

    async def reply_with(self, update: Update, work: Awaitable[str]) -> None:
        """Answer with `work`'s text, showing "typing…" until it is there."""
        chat_id = _chat_id(update)
        task = asyncio.ensure_future(answers.answer(work))
        while not task.done():
            await self._typing(chat_id)
            await asyncio.wait({task}, timeout=TYPING_EVERY_S)
        await self.say(chat_id, task.result())

    async def _typing(self, chat_id: int) -> None:
        assert self.app is not None
        try:
            await self.app.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as error:  # only a courtesy; the answer matters
            log.debug("telegram_typing_failed", error=repr(error))

    async def on_error(self, update: object, context: Context) -> None:
        log.error("telegram_handler_failed", error=repr(context.error), exc_info=context.error)


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None
    return chat.id
