"""An agent class read into its definition and manifest, and every way a class is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from vsm.agent import Agent, AgentDefinitionError, Context, NoConfig, command, definition, describe
from vsm.contract.agent_types import AgentTypeManifest


class Config(BaseModel):
    limit: int = Field(default=3, ge=1)


class Question(BaseModel):
    text: str = Field(min_length=1)


class Answer(BaseModel):
    text: str
    score: float = 0.0


class Oracle(Agent[Config]):
    """Answers questions.

    Everything after the first paragraph stays out of the description."""

    name = "oracle"
    version = "2.1"

    @command
    async def ask(self, data: Question, ctx: Context) -> Answer:
        """Ask a question."""
        return Answer(text=data.text)

    @command(name="forget", description="Forget everything.")
    async def clear(self, data: NoConfig) -> None:
        return None


def test_the_manifest_carries_every_schema() -> None:
    manifest = describe(Oracle)

    assert manifest.name == "oracle"
    assert manifest.version == "2.1"
    assert manifest.description == "Answers questions."
    assert manifest.config_schema == Config.model_json_schema()
    assert sorted(manifest.commands) == ["ask", "forget"]
    ask = manifest.commands["ask"]
    assert ask.description == "Ask a question."
    assert ask.input_schema == Question.model_json_schema()
    assert ask.output_schema == Answer.model_json_schema(mode="serialization")
    assert manifest.commands["forget"].description == "Forget everything."
    assert manifest.commands["forget"].output_schema is None


def test_the_manifest_travels_as_json_and_reads_back_equal() -> None:
    manifest = describe(Oracle)

    again = AgentTypeManifest.model_validate_json(manifest.model_dump_json())

    assert again == manifest


def test_the_manifest_gives_the_capability_listing_entry() -> None:
    info = describe(Oracle).info()

    assert info.agent_type == "oracle"
    assert info.capabilities == {"ask": "Ask a question.", "forget": "Forget everything."}
    assert info.commands["ask"].input_schema["required"] == ["text"]


def test_the_config_model_is_read_from_the_generic_parameter() -> None:
    read = definition(Oracle)

    assert read.config_model is Config
    assert read.commands["ask"].context_parameter == "ctx"
    assert read.commands["forget"].context_parameter is None
    assert read.commands["forget"].method == "clear"


def test_a_type_without_a_config_takes_none() -> None:
    class Plain(Agent):  # type: ignore[type-arg]
        """Plain."""

        name = "plain"

        @command
        async def go(self, data: NoConfig) -> None:
            """Go."""

    assert describe(Plain).config_schema["additionalProperties"] is False


def test_a_subclass_inherits_commands_and_is_its_own_type() -> None:
    class Sage(Oracle):
        """A wiser oracle."""

        name = "sage"

    assert describe(Sage).name == "sage"
    assert sorted(describe(Sage).commands) == ["ask", "forget"]
    assert describe(Oracle).name == "oracle"


def broken(body: dict[str, Any]) -> type[Agent[Any]]:
    return type("Broken", (Agent,), {"__doc__": "Broken.", "name": "broken", **body})


def go() -> Any:
    """A new command method each time (a mark is set on the function itself)."""

    async def method(self: Any, data: Question) -> Answer:
        """Go."""
        return Answer(text="")

    return method


def not_async(self: Any, data: Question) -> Answer:
    return Answer(text="")


async def untyped(self: Any, data) -> Answer:  # type: ignore[no-untyped-def]
    return Answer(text="")


async def two_inputs(self: Any, data: Question, more: Question) -> Answer:
    return Answer(text="")


async def returns_dict(self: Any, data: Question) -> dict[str, Any]:
    return {}


async def undescribed(self: Any, data: Question) -> Answer:
    return Answer(text="")


async def unresolved(self: Any, data: Question) -> Missing:  # type: ignore[name-defined]  # noqa: F821
    return Answer(text="")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "Bad Name", "go": command(go())}, "set `name`"),
        ({"__doc__": None, "go": command(go())}, "describe the type"),
        ({}, "at least one @command"),
        ({"go": command(not_async)}, "`async def`"),
        ({"go": command(untyped)}, "parameter 'data'"),
        ({"go": command(two_inputs)}, "one pydantic model"),
        ({"go": command(returns_dict)}, "must return a pydantic model or None"),
        ({"go": command(undescribed)}, "describe the command"),
        ({"go": command(unresolved)}, "cannot be resolved"),
        ({"go": command(name="Go!")(go())}, "command name 'Go!'"),
        (
            {"go": command(go()), "again": command(name="go")(go())},
            "two commands named 'go'",
        ),
        ({"go": command(go()), "config_model": dict}, "config_model"),
    ],
)
def test_a_class_that_is_no_usable_type_is_refused_saying_what_to_fix(
    body: dict[str, Any], says: str
) -> None:
    with pytest.raises(AgentDefinitionError) as refused:
        describe(broken(body))

    assert says in str(refused.value)


def test_something_else_than_an_agent_class_is_refused() -> None:
    with pytest.raises(AgentDefinitionError, match="not a subclass"):
        describe(Config)  # type: ignore[arg-type]


class Opaque:
    """Not a type pydantic can describe in a JSON schema."""


class Holder(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    thing: Opaque


def test_a_model_without_a_json_schema_is_refused_at_definition() -> None:
    class Hidden(Agent):  # type: ignore[type-arg]
        """Hides its input."""

        name = "hidden"

        @command
        async def take(self, data: Holder) -> None:
            """Take a thing."""

    with pytest.raises(AgentDefinitionError, match="its manifest cannot be made"):
        describe(Hidden)
