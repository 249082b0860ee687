"""The operations room: a live web console of the viable system, served by the gateway.

Server-rendered pages (Jinja2), kept live by server-sent events fed from the bus, with
htmx and its SSE and morph extensions (vendored under `static/`) as the only client
library. See the service README for what it shows and how it is guarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vsm.kit.dead_letters import DeadLetters
from vsm.kit.runtime import Runtime
from vsm.mcp_gateway.console.guard import Peers, console_bridge
from vsm.mcp_gateway.console.live import Hub, Listening
from vsm.mcp_gateway.console.pages import Answers
from vsm.mcp_gateway.console.routes import Console, routes
from vsm.mcp_gateway.console.session import ScopeOf
from vsm.mcp_gateway.crosssite import allowed
from vsm.mcp_gateway.settings import Settings


@dataclass(frozen=True)
class Mounted:
    routes: list[Any]
    middleware: Any
    """Goes before any other check of `/api/vsm`: it admits the console's own requests."""


def mount(
    runtime: Runtime, settings: Settings, scope_of: ScopeOf, dead_letters: DeadLetters
) -> Mounted:
    peers = Peers(*allowed(settings))
    hub = Hub()
    listening = Listening(runtime.bus, hub)
    runtime.on_stop(listening.stop)
    console = Console(
        answers=Answers(runtime.bus, hub, dead_letters),
        hub=hub,
        listening=listening,
        peers=peers,
        scope_of=scope_of,
        session_s=settings.console_session_s,
    )
    return Mounted(routes(console), console_bridge(peers, scope_of))
