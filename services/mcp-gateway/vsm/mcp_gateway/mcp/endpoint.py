"""The `/mcp` route, whose server is built on its first request: the MCP SDK (about 25 MiB
of an idle gateway) is loaded only once someone uses MCP.

One task of the service's own runs the server's session manager from that first request
until the service stops (the manager's task group is entered and left by that one task);
requests wait for it to be ready, and all of them after the first go straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

import structlog
from litestar.handlers import asgi
from litestar.types import ASGIApp, Receive, Scope, Send

from vsm.kit.runtime import Runtime
from vsm.mcp_gateway.access import Tokens
from vsm.mcp_gateway.settings import Settings

__all__ = ["OnDemand", "mount"]

log = structlog.get_logger("vsm.mcp_gateway.mcp")


class OnDemand:
    """The MCP server, built and run on the first request to it."""

    def __init__(self, runtime: Runtime, settings: Settings, tokens: Tokens) -> None:
        self.runtime, self.settings, self.tokens = runtime, settings, tokens
        self.wanted = asyncio.Event()
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.app: ASGIApp | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._serve(), name="mcp-server")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            if not self.wanted.is_set():
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _serve(self) -> None:
        try:
            await self.wanted.wait()
            # Imported in a thread: the SDK takes a second of CPU to import, not the loop's.
            server = await asyncio.to_thread(importlib.import_module, f"{__package__}.server")
            manager, app = server.serve(self.runtime, self.settings, self.tokens)
            async with manager.run():
                self.app = app
                self.ready.set()
                await self.stopping.wait()
        except Exception:
            log.exception("mcp_server_failed")
        finally:
            self.ready.set()  # a failed start answers the waiting requests (500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.wanted.set()
        await self.ready.wait()
        if self.app is None:
            raise RuntimeError("the MCP server did not start")
        await self.app(scope, receive, send)


def mount(runtime: Runtime, settings: Settings, tokens: Tokens) -> Any:
    """The `/mcp` route (outside the OpenAPI schema), its server started on first use and
    stopped with the service. The edge's gate lets a read token in (`opt`); each tool call
    then needs its own scope."""
    server = OnDemand(runtime, settings, tokens)
    runtime.on_start(server.start)
    runtime.on_stop(server.stop)

    @asgi("/mcp", is_mount=True, include_in_schema=False, copy_scope=True, opt={"scope": "read"})
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await server(scope, receive, send)

    return mcp_endpoint
