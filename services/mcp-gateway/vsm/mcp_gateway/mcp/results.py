"""How a reply from the owning system becomes an MCP tool result, and how failures do.

A result is the reply's JSON as text plus the same data as `structuredContent`. A result
longer than the cap comes back as an error result holding the first characters and a
truncation marker: structured content that broke the advertised output schema would be
worse than none, and the spec forbids it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from vsm.kit.bus import NotRoutable, RequestFailed, UnexpectedReply
from vsm.kit.rpc import RequestTimeout
from vsm.mcp_gateway.rest.agents import NoHost

P = ParamSpec("P")


def truncation_marker(shown: int, total: int) -> str:
    return f"\n…[truncated: showed {shown} of {total} characters]"


def capped(text: str, max_chars: int) -> tuple[str, bool]:
    """`text` cut to `max_chars` (marker included) and whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    shown = max(0, max_chars - len(truncation_marker(max_chars, len(text))))
    return text[:shown] + truncation_marker(shown, len(text)), True


def tool_result(reply: BaseModel, max_chars: int) -> CallToolResult:
    text, cut = capped(reply.model_dump_json(), max_chars)
    if cut:
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=reply.model_dump(mode="json"),
    )


def describe_failure(error: Exception) -> str | None:
    """`<code>: <message>` for a failure of the owning system; None for anything else."""
    if isinstance(error, RequestFailed):
        return f"{error.reply.code}: {error.reply.message}"
    if isinstance(error, NoHost):
        return f"no_host: {error}"
    if isinstance(error, RequestTimeout):
        return f"timeout: {error}"
    if isinstance(error, NotRoutable):
        return f"agent_not_found: {error}"
    if isinstance(error, UnexpectedReply):
        return f"unexpected_reply: {error}"
    return None


def answered(
    fn: Callable[P, Awaitable[CallToolResult]],
) -> Callable[P, Awaitable[CallToolResult]]:
    """Turn a failure of the owning system into a tool error the client reads (`isError`)."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
        try:
            return await fn(*args, **kwargs)
        except (RequestFailed, RequestTimeout, NotRoutable, UnexpectedReply, NoHost) as error:
            raise ToolError(describe_failure(error) or "failed") from error

    return call
