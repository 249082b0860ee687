"""`researcher`: an LLM agent type with tools of its own. It asks the model a question
through the host's LLM client (`ctx.llm`: Anthropic's Messages API, metered and charged to the
agent within its S3 allowance), answers the model's `tool_use` turns with its tools
(`word_count`, and `lookup` in the glossary its config holds), and returns the model's final
text with the tools it used, in a bounded number of turns.

What it shows of the SDK: a command that uses `ctx.llm` and refuses with a stable code when
the host has none; tools that are plain functions over pydantic models (their JSON schemas
are the tools' `input_schema`); cancellation checked between turns; tokens counted in the
audit view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vsm.agent import Agent, Context, Refused, command

__all__ = [
    "TOOLS",
    "Answer",
    "Question",
    "Researcher",
    "ResearcherAudit",
    "ResearcherConfig",
    "ToolCall",
]

SYSTEM = (
    "You are a careful researcher. Use the tools when they help: `lookup` finds a term in "
    "the glossary you were given, `word_count` counts the words of a text. Answer briefly."
)
MAX_TOOL_RESULT_CHARS = 2_000


class ResearcherConfig(BaseModel):
    """The model a researcher asks, how much it may spend on one question, its glossary."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="claude-haiku-4-5", min_length=1, max_length=128)
    max_tokens: int = Field(default=1024, ge=1, le=8192, description="Per model turn.")
    max_turns: int = Field(default=4, ge=1, le=10, description="Model calls per question.")
    glossary: dict[str, str] = Field(
        default_factory=dict,
        max_length=500,
        description="Terms (any case) and what they mean: what the `lookup` tool knows.",
    )


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4_000)


class ToolCall(BaseModel):
    """One tool the model asked for, and what it was told."""

    name: str
    input: dict[str, Any]
    result: str
    is_error: bool = False


class Answer(BaseModel):
    text: str
    tools_used: list[ToolCall]
    turns: int = Field(description="Model calls made.")
    input_tokens: int
    output_tokens: int


class ResearcherAudit(BaseModel):
    """What an S3* audit sees of a researcher."""

    questions: int = 0
    answered: int = 0
    turns: int = 0
    tool_calls: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0


# --- the tools: a model of their input, and a plain function answering text ----------------


class WordCount(BaseModel):
    """Count the words (and characters) of a text."""

    text: str = Field(max_length=100_000)


class Lookup(BaseModel):
    """Look a term up in the researcher's glossary."""

    term: str = Field(min_length=1, max_length=128)


class ToolFailed(Exception):
    """A tool could not answer; the model is told why (`is_error`) and may try again."""


def word_count(data: WordCount, glossary: Mapping[str, str]) -> str:
    return json.dumps({"words": len(data.text.split()), "characters": len(data.text)})


def lookup(data: Lookup, glossary: Mapping[str, str]) -> str:
    known = {term.casefold(): meaning for term, meaning in glossary.items()}
    meaning = known.get(data.term.strip().casefold())
    if meaning is None:
        raise ToolFailed(f"no entry for {data.term!r}; known terms: {', '.join(sorted(glossary))}")
    return meaning


Tool = Callable[[Any, Mapping[str, str]], str]
TOOLS: dict[str, tuple[type[BaseModel], Tool]] = {
    "word_count": (WordCount, word_count),
    "lookup": (Lookup, lookup),
}
"""The researcher's tools: their input model and the function answering them."""


def tool_definitions() -> list[dict[str, Any]]:
    """The tools as the Messages API takes them (`name`, `description`, `input_schema`)."""
    return [
        {"name": name, "description": model.__doc__ or name, "input_schema": _schema(model)}
        for name, (model, _) in TOOLS.items()
    ]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    return schema


def use_tool(name: str, arguments: Any, glossary: Mapping[str, str]) -> ToolCall:
    """Run the tool the model asked for; a wrong name or input is the model's error to see."""
    arguments = arguments if isinstance(arguments, dict) else {}
    try:
        if name not in TOOLS:
            raise ToolFailed(f"no tool {name!r}; tools: {', '.join(TOOLS)}")
        model, function = TOOLS[name]
        try:
            data = model.model_validate(arguments)
        except ValidationError as error:
            raise ToolFailed(f"invalid input: {error.errors(include_url=False)}") from None
        result, failed = function(data, glossary), False
    except ToolFailed as error:
        result, failed = str(error), True
    return ToolCall(
        name=name[:64], input=arguments, result=result[:MAX_TOOL_RESULT_CHARS], is_error=failed
    )


# --- reading the model's message (the SDK's `Message`, or the same as JSON data) -----------


def _get(item: Any, key: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def blocks(message: Any) -> list[dict[str, Any]]:
    """The message's text and tool_use blocks as the plain data a next request sends back."""
    found: list[dict[str, Any]] = []
    for block in _get(message, "content") or []:
        kind = _get(block, "type")
        if kind == "text":
            found.append({"type": "text", "text": str(_get(block, "text", ""))})
        elif kind == "tool_use":
            found.append(
                {
                    "type": "tool_use",
                    "id": _get(block, "id"),
                    "name": _get(block, "name"),
                    "input": _get(block, "input") or {},
                }
            )
    return found


class Researcher(Agent[ResearcherConfig]):
    """Answers questions with an LLM that can count words and look terms up in a glossary."""

    name = "researcher"
    version = "1.0"

    async def start(self) -> None:
        self.seen = ResearcherAudit()

    def audit(self) -> ResearcherAudit:
        return self.seen

    @command
    async def ask(self, data: Question, ctx: Context) -> Answer:
        """Ask a question; the model may use the tools for a few turns, then answers."""
        if ctx.llm is None:
            raise Refused("llm_unavailable", "this host has no LLM client to lend the agent")
        self.seen.questions += 1
        messages: list[dict[str, Any]] = [{"role": "user", "content": data.question}]
        used: list[ToolCall] = []
        tokens = {"input_tokens": 0, "output_tokens": 0}
        limit = self.config.max_turns
        for turn in range(1, limit + 1):
            ctx.check()
            reply = await ctx.llm.create(
                model=self.config.model,
                max_tokens=self.config.max_tokens,
                system=SYSTEM,
                messages=messages,
                tools=tool_definitions(),
            )
            self._count(reply, tokens)
            ctx.progress(turn, limit, f"model turn {turn}")
            content = blocks(reply)
            calls = [block for block in content if block["type"] == "tool_use"]
            if _get(reply, "stop_reason") != "tool_use" or not calls:
                self.seen.answered += 1
                text = "".join(block["text"] for block in content if block["type"] == "text")
                return Answer(text=text, tools_used=used, turns=turn, **tokens)
            results = []
            for call in calls:
                done = use_tool(str(call["name"]), call["input"], self.config.glossary)
                self.seen.tool_calls[done.name] = self.seen.tool_calls.get(done.name, 0) + 1
                ctx.log.info("tool used", tool=done.name, is_error=done.is_error)
                used.append(done)
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call["id"],
                        "content": done.result,
                        "is_error": done.is_error,
                    }
                )
            messages += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": results},
            ]
        raise Refused(
            "too_many_turns",
            f"the model still wanted tools after {limit} turns",
            {"turns": limit, "tools_used": [call.name for call in used]},
        )

    def _count(self, reply: Any, tokens: dict[str, int]) -> None:
        """Add the reply's usage to the command's tokens and the agent's."""
        usage = _get(reply, "usage")
        self.seen.turns += 1
        for key in tokens:
            spent = int(_get(usage, key, 0) or 0)
            tokens[key] += spent
            setattr(self.seen, key, getattr(self.seen, key) + spent)
