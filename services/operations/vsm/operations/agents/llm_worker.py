"""`llm_worker`: multi-turn conversations with Claude, tool use limited to an allow-list."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vsm.agent import Agent, AgentIdentity, Context, Llm, command
from vsm.kit.llm import MeteredLlm
from vsm.kit.locks import KeyedLocks
from vsm.operations.agents.base import AgentConfig, CommandFailed, Crash, Resources
from vsm.operations.agents.llm_calls import create_message
from vsm.operations.agents.llm_tools import TOOLS
from vsm.operations.agents.sdk import hosted_type

if TYPE_CHECKING:
    from anthropic.types import Message

Turn = dict[str, Any]


class LlmConfig(AgentConfig):
    model: str = Field(default="claude-haiku-4-5", min_length=1, max_length=128)
    max_tokens: int = Field(default=1024, ge=1, le=64_000)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    tools: list[str] = Field(default_factory=list, description="Allowed tool names.")
    max_tool_rounds: int = Field(default=4, ge=0, le=32)
    max_conversations: int = Field(default=100, ge=1, le=10_000)
    max_history: int = Field(default=50, ge=2, le=1_000)
    daily_cap_usd: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Hard cap on the agent's LLM spend per UTC day: a call whose worst case "
        "would cross it fails with `llm_budget_exhausted`, unsent.",
    )

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(TOOLS))
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {sorted(TOOLS)}")
        return names


class Chat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=500_000)
    conversation_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        min_length=1,
        max_length=128,
        description="The conversation to continue; a new one when left out.",
    )


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    input: Any
    status: Literal["ok", "refused", "invalid_input"]


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: int
    output_tokens: int


class Chatted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    text: str
    stop_reason: str | None
    tool_calls: list[ToolCall]
    attempts: int = Field(description="Calls made to the Messages API, retries included.")
    usage: Usage = Field(description="Tokens of the last call.")


class Reset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=128)


class Forgotten(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    reset: bool


def assistant_turn(reply: Message) -> Turn:
    content: list[dict[str, Any]] = []
    for block in reply.content:
        if block.type == "text":
            content.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
    return {"role": "assistant", "content": content}


def trimmed(history: list[Turn], limit: int) -> list[Turn]:
    """The newest turns within `limit`, starting at a plain user message (never a tool result)."""
    start = max(0, len(history) - limit)
    while start < len(history) and not isinstance(history[start]["content"], str):
        start += 1
    return history[start:]


DEFAULT_RETRY_DEADLINE_S = 20.0
"""How long a chat's Messages API call is retried, until the host lends its own setting."""


class LlmWorker(Agent[LlmConfig]):
    """Claude over the Messages API: conversations, allow-listed tools."""

    name = "llm_worker"

    def __init__(self, config: LlmConfig, identity: AgentIdentity) -> None:
        super().__init__(config, identity)
        self.client: MeteredLlm | None = None
        """The host's metered client for this agent (`borrow`): its allowance, for audits."""
        self.deadline_s = DEFAULT_RETRY_DEADLINE_S
        self.conversations: OrderedDict[str, list[Turn]] = OrderedDict()
        self.locks = KeyedLocks()
        """One chat at a time per conversation, kept only while one runs or waits."""
        self.calls = 0

    def borrow(self, resources: Resources, crash: Crash | None = None) -> None:
        """The host's LLM client, charged to this agent and capped at its `daily_cap_usd`,
        and how long a call is retried."""
        self.client = resources.llm
        self.deadline_s = resources.llm_retry_deadline_s
        if self.client is not None and self.client.allowance is not None:
            self.client.allowance.daily_cap_usd = self.config.daily_cap_usd

    @command(description="forget `conversation_id`")
    async def reset(self, request: Reset) -> Forgotten:
        self.conversations.pop(request.conversation_id, None)
        return Forgotten(conversation_id=request.conversation_id, reset=True)

    @command(description="`message` in `conversation_id` (new when omitted) -> text, tool calls")
    async def chat(self, chat: Chat, ctx: Context) -> Chatted:
        if ctx.llm is None:
            raise CommandFailed(
                "llm_not_configured", "no Anthropic API key is configured (ANTHROPIC_API_KEY)"
            )
        async with self.locks.hold(chat.conversation_id):
            return Chatted.model_validate(await self._chat(ctx.llm, chat))

    async def _chat(self, client: Llm, chat: Chat) -> dict[str, Any]:
        history = [*self.conversations.get(chat.conversation_id, []), _user(chat.message)]
        tool_calls: list[dict[str, Any]] = []
        attempts = 0
        for _ in range(self.config.max_tool_rounds + 1):
            reply, tries = await create_message(client, self.deadline_s, **self._request(history))
            self.calls += 1
            attempts += tries
            history.append(assistant_turn(reply))
            if reply.stop_reason != "tool_use":
                break
            history.append(self._use_tools(reply, tool_calls))
        self._remember(chat.conversation_id, history)
        text = "".join(block.text for block in reply.content if block.type == "text")
        return {
            "conversation_id": chat.conversation_id,
            "text": text,
            "stop_reason": reply.stop_reason,
            "tool_calls": tool_calls,
            "attempts": attempts,
            "usage": {
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
            },
        }

    def _request(self, history: list[Turn]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "messages": history,
        }
        if self.config.system_prompt:
            request["system"] = self.config.system_prompt
        if self.config.tools:
            request["tools"] = [TOOLS[name].definition() for name in self.config.tools]
        return request

    def _use_tools(self, reply: Message, calls: list[dict[str, Any]]) -> Turn:
        results = []
        for block in reply.content:
            if block.type != "tool_use":
                continue
            outcome, is_error, status = self._run_tool(block.name, block.input)
            calls.append({"name": block.name, "input": block.input, "status": status})
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": block.id,
                    "content": outcome,
                    "is_error": is_error,
                }
            )
        return {"role": "user", "content": results}

    def _run_tool(self, name: str, arguments: Any) -> tuple[str, bool, str]:
        if name not in self.config.tools:
            return f"tool {name!r} is not allowed for this agent", True, "refused"
        try:
            return str(TOOLS[name].call(arguments)), False, "ok"
        except ValidationError as error:
            return f"invalid input: {error.errors(include_url=False)}", True, "invalid_input"

    def _remember(self, conversation: str, history: list[Turn]) -> None:
        self.conversations[conversation] = trimmed(history, self.config.max_history)
        self.conversations.move_to_end(conversation)
        while len(self.conversations) > self.config.max_conversations:
            self.conversations.popitem(last=False)

    def audit(self) -> dict[str, Any]:
        return self.state()

    def state(self) -> dict[str, Any]:
        allowance = self.client.allowance if self.client is not None else None
        return {
            "model": self.config.model,
            "configured": self.client is not None,
            "conversations": len(self.conversations),
            "calls": self.calls,
            "tools": self.config.tools,
            "daily_cap_usd": self.config.daily_cap_usd,
            "spent_today_usd": allowance.spent_today() if allowance is not None else None,
            "share_usd": allowance.share_usd if allowance is not None else None,
        }


def _user(text: str) -> Turn:
    return {"role": "user", "content": text}


LLM_WORKER = hosted_type(LlmWorker, built_in=True)
