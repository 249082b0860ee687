"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> bot -> HTTP app.

Without `TELEGRAM_BOT_TOKEN` the service runs, healthy, with `{"bot": "disabled"}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.di import Provide

from vsm.contract import topology
from vsm.contract.approvals import ApprovalReply, DecideApproval
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.operations import (
    AgentCommand,
    AgentDescription,
    AgentList,
    CommandResult,
    ListAgents,
    SpawnAgent,
    command_key,
)
from vsm.contract.policy import PolicyList, PolicyListQuery, PolicyQuery, PolicyReply
from vsm.contract.system5 import System5Query, System5State
from vsm.kit.runtime import Runtime
from vsm.telegram_gateway import handlers
from vsm.telegram_gateway.assistant import Assistant
from vsm.telegram_gateway.outlets import Outlets, outlets
from vsm.telegram_gateway.settings import Settings
from vsm.telegram_gateway.webhook import telegram_webhook

if TYPE_CHECKING:
    from vsm.telegram_gateway.bot import TelegramBot

SERVICE = "telegram-gateway"


def create_bot(settings: Settings, runtime: Runtime, published: Outlets) -> TelegramBot | None:
    if not settings.bot_enabled:
        return None
    # python-telegram-bot only with a bot configured (about 17 MiB of an idle gateway).
    from vsm.telegram_gateway.bot import TelegramBot

    assistant = Assistant(
        runtime.bus, model=settings.telegram_llm_model, timeout_s=settings.telegram_llm_timeout_s
    )
    bot = TelegramBot(settings, runtime.bus, published, assistant)
    runtime.on_start(bot.start)
    runtime.on_stop(bot.stop)
    return bot


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    interface = runtime.bus.interface
    for request, reply in (
        (StatusQuery, SystemStatus),
        (System5Query, System5State),
        (PolicyListQuery, PolicyList),
        (PolicyQuery, PolicyReply),
    ):
        interface.asks("queen", request, reply)
    interface.asks("queen", DecideApproval, ApprovalReply)
    interface.asks("operations", ListAgents, AgentList)
    interface.asks("operations", SpawnAgent, AgentDescription)
    interface.sends(
        topology.S1_COMMANDS,
        AgentCommand,
        routing_key=command_key("llm_worker", "{agent_id}", "chat"),
        replies=(CommandResult,),
    )
    bus = runtime.bus
    published = outlets(bus)
    bot = create_bot(settings, runtime, published)
    handlers.subscribe(bus, bot)
    mode = bot.mode if bot else "disabled"
    runtime.health.add_details(lambda: {"bot": mode})

    async def provide_outlets() -> Outlets:
        return published

    async def provide_settings() -> Settings:
        return settings

    return runtime.http_app(
        [telegram_webhook],
        dependencies={
            "outlets": Provide(provide_outlets),
            "settings": Provide(provide_settings),
        },
    )
