"""`vsm mcp`: the gateway's MCP server over stdio, for desktop clients (Claude Desktop, ...)."""

from __future__ import annotations

import anyio
import click

from vsm.cli.mcp_bridge import serve
from vsm.cli.session import Session, pass_session
from vsm.cli.settings import resolve


@click.command()
@pass_session
def mcp(session: Session) -> None:
    """Serve the gateway's MCP tools, resources and prompts on stdin/stdout.

    Configure it as a stdio server of an MCP client (command `vsm`, argument `mcp`); the
    gateway and its token are found as for every command (--url, --token, VSM_URL,
    VSM_TOKEN, the config file, ./.run/token). Runs until the client closes stdin.
    """
    anyio.run(serve, resolve(session.url, session.token))
