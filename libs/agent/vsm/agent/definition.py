"""An agent type: a class with a name, a description, a config model and typed commands.

Everything a host and the rest of the system need to know about a type is read from the
class, once, by `definition` (and sent as `describe`'s manifest): the config model comes from
`Agent[ConfigModel]`, each command's input and output models from its method's annotations.
A class that cannot be read is an `AgentDefinitionError` naming what to fix.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, NewType, TypeVar, overload

from pydantic import BaseModel, ConfigDict

from vsm.agent.context import AgentIdentity, Context, Intent, agent_log, feeling
from vsm.contract.agent_types import AGENT_TYPE_PATTERN, AgentTypeManifest
from vsm.contract.operations import COMMAND_PATTERN, CommandInfo

__all__ = [
    "Agent",
    "AgentDefinitionError",
    "AgentTypeDefinition",
    "CommandDefinition",
    "JsonObject",
    "NoConfig",
    "command",
    "definition",
    "describe",
]

_MARK = "__vsm_command__"
_READ = "__vsm_definition__"


class AgentDefinitionError(TypeError):
    """A class that is not a usable agent type; the message says what to change."""


class NoConfig(BaseModel):
    """The config of a type that takes none: nothing but an empty object is accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)


JsonObject = NewType("JsonObject", dict[str, Any])
"""A command's answer whose shape is not declared: any JSON object. Annotate the command
`-> JsonObject` and return `JsonObject({...})`; its manifest's `output_schema` is None (left
open) and the host checks only that the answer is a JSON object."""

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class Agent(Generic[ConfigT]):
    """Base of every agent type. Subclass it as `Agent[MyConfig]`, set `name`, write a
    docstring (the description) and decorate async methods with `@command`.

    A host makes one instance per agent, with its validated config, then calls `start`;
    `audit` is what an S3* `state_dump` shows of it; `stop` is called once at the end.
    """

    name: ClassVar[str]
    """The type's name, unique in the system (`^[a-z][a-z0-9_-]{0,31}$`)."""
    version: ClassVar[str] = "1"
    """For people: which release of the type a host runs (clashes compare schemas only)."""
    description: ClassVar[str | None] = None
    """What the type does; the class docstring when left out."""
    config_model: ClassVar[type[BaseModel]] = NoConfig
    """Read from `Agent[ConfigModel]`; set it only to override."""

    def __init__(self, config: ConfigT, identity: AgentIdentity) -> None:
        self.config = config
        self.identity = identity
        self.log = agent_log(identity)
        """Structured logs bound to this agent (a command's `ctx.log` adds the command)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            if typing.get_origin(base) is Agent:
                (argument,) = typing.get_args(base)
                if isinstance(argument, type) and issubclass(argument, BaseModel):
                    cls.config_model = argument

    async def start(self) -> None:
        """Called once before the first command: open what the agent keeps open."""

    async def stop(self) -> None:
        """Called once after the last command: close what `start` opened."""

    def audit(self) -> Mapping[str, Any] | BaseModel:
        """What S3*'s `state_dump` shows of this agent besides what the host knows (JSON)."""
        return {}

    _heard: Callable[[Intent], None] | None = None
    """Where the host hears feelings raised outside commands (`spawn(on_intent=...)`)."""

    def pain(
        self, reason: str, intensity: float = 0.5, *, episode: str | None = None, **context: Any
    ) -> None:
        """Tell S5 this hurts, outside any command (what a background loop finds): `reason` a
        stable code, intensity 0..1; `episode` names the incident (signals of one episode are
        one trouble to S5; None: the host's, by agent and reason). In a command, `ctx.pain`."""
        self._feel("pain", reason, intensity, episode, context)

    def pleasure(
        self, reason: str, intensity: float = 0.5, *, episode: str | None = None, **context: Any
    ) -> None:
        """Tell S5 this goes well, outside any command (as `pain`)."""
        self._feel("pleasure", reason, intensity, episode, context)

    def _feel(
        self,
        kind: Literal["pain", "pleasure"],
        reason: str,
        intensity: float,
        episode: str | None,
        context: dict[str, Any],
    ) -> None:
        felt = feeling(kind, reason, intensity, context, episode=episode)
        if self._heard is None:
            self.log.warning("feeling_unheard", kind=kind, reason=reason)
            return
        try:
            self._heard(felt)
        except Exception:
            self.log.exception("the host failed to take a feeling")


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class _Mark:
    name: str | None
    description: str | None


@overload
def command(method: F, /) -> F: ...


@overload
def command(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...


def command(
    method: F | None = None, /, *, name: str | None = None, description: str | None = None
) -> F | Callable[[F], F]:
    """Declare an async method a command: `async def greet(self, data: Greet, ctx: Context)
    -> Greeting`. Its name is the method's (or `name`), its description the docstring's first
    paragraph (or `description`), its input the one pydantic-model parameter, its output the
    returned model (`None`: an empty result). A `Context` parameter is optional."""

    def mark(function: F) -> F:
        setattr(function, _MARK, _Mark(name, description))
        return function

    return mark if method is None else mark(method)


@dataclass(frozen=True)
class CommandDefinition:
    """One command as read from its method."""

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel] | None
    method: str
    input_parameter: str
    context_parameter: str | None
    open_output: bool = False
    """Annotated `-> JsonObject`: any JSON object, no output model."""

    def info(self) -> CommandInfo:
        output = self.output_model
        return CommandInfo(
            description=self.description,
            input_schema=self.input_model.model_json_schema(),
            output_schema=output.model_json_schema(mode="serialization") if output else None,
        )


@dataclass(frozen=True)
class AgentTypeDefinition:
    """An agent class as read once: what hosts run and what `describe` sends."""

    agent_class: type[Agent[Any]]
    name: str
    version: str
    description: str
    config_model: type[BaseModel]
    commands: Mapping[str, CommandDefinition]

    def manifest(self) -> AgentTypeManifest:
        return AgentTypeManifest(
            name=self.name,
            version=self.version,
            description=self.description,
            config_schema=self.config_model.model_json_schema(),
            commands={name: c.info() for name, c in self.commands.items()},
        )


def _summary(text: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    cleaned = inspect.cleandoc(text or "").split("\n\n", 1)[0]
    return " ".join(cleaned.split())


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _command(
    agent: type[Agent[Any]], attribute: str, method: Any, mark: _Mark
) -> CommandDefinition:
    where = f"{agent.__qualname__}.{attribute}"
    name = mark.name or attribute
    if not re.fullmatch(COMMAND_PATTERN, name):
        message = f"{where}: the command name {name!r} must match {COMMAND_PATTERN}"
        raise AgentDefinitionError(message)
    if not inspect.iscoroutinefunction(method):
        raise AgentDefinitionError(f"{where}: a command is an `async def` method")
    try:
        hints = typing.get_type_hints(method)
    except Exception as error:
        message = f"{where}: its annotations cannot be resolved ({error})"
        raise AgentDefinitionError(message) from error
    inputs, contexts = [], []
    for parameter in list(inspect.signature(method).parameters)[1:]:
        annotation = hints.get(parameter)
        if annotation is Context:
            contexts.append(parameter)
        elif _is_model(annotation):
            inputs.append(parameter)
        else:
            raise AgentDefinitionError(
                f"{where}: parameter {parameter!r} must be annotated with a pydantic model "
                "(the input) or Context"
            )
    if len(inputs) != 1 or len(contexts) > 1:
        raise AgentDefinitionError(
            f"{where}: a command takes one pydantic model (its input) and at most one Context"
        )
    output = hints.get("return", None)
    open_output = output is JsonObject
    if output is not type(None) and not _is_model(output) and not open_output:
        raise AgentDefinitionError(
            f"{where}: it must return a pydantic model or None (or JsonObject), annotated"
        )
    description = mark.description or _summary(method.__doc__)
    if not description:
        raise AgentDefinitionError(f"{where}: describe the command (a docstring or description=)")
    return CommandDefinition(
        name=name,
        description=description,
        input_model=hints[inputs[0]],
        output_model=None if output is type(None) or open_output else output,
        method=attribute,
        input_parameter=inputs[0],
        context_parameter=contexts[0] if contexts else None,
        open_output=open_output,
    )


def definition(agent: type[Agent[Any]]) -> AgentTypeDefinition:
    """Read an agent class (once); `AgentDefinitionError` says what is wrong with it."""
    if not (isinstance(agent, type) and issubclass(agent, Agent)):
        raise AgentDefinitionError(f"{agent!r} is not a subclass of vsm.agent.Agent")
    known = agent.__dict__.get(_READ)
    if isinstance(known, AgentTypeDefinition):
        return known
    read = _read(agent)
    try:
        read.manifest()
    except Exception as error:
        message = f"{agent.__qualname__}: its manifest cannot be made ({error})"
        raise AgentDefinitionError(message) from error
    setattr(agent, _READ, read)
    return read


def _read(agent: type[Agent[Any]]) -> AgentTypeDefinition:
    name = agent.__dict__.get("name")
    if not isinstance(name, str) or not re.fullmatch(AGENT_TYPE_PATTERN, name):
        raise AgentDefinitionError(
            f"{agent.__qualname__}: set `name` on the class, matching {AGENT_TYPE_PATTERN}"
        )
    description = agent.description or _summary(agent.__doc__)
    if not description:
        raise AgentDefinitionError(f"{agent.__qualname__}: describe the type (a docstring)")
    commands: dict[str, CommandDefinition] = {}
    for attribute in dir(agent):
        method = getattr(agent, attribute, None)
        mark = getattr(method, _MARK, None)
        if isinstance(mark, _Mark):
            found = _command(agent, attribute, method, mark)
            if found.name in commands:
                message = f"{agent.__qualname__}: two commands named {found.name!r}"
                raise AgentDefinitionError(message)
            commands[found.name] = found
    if not commands:
        raise AgentDefinitionError(f"{agent.__qualname__}: declare at least one @command")
    if not _is_model(agent.config_model):
        raise AgentDefinitionError(f"{agent.__qualname__}: config_model must be a pydantic model")
    return AgentTypeDefinition(
        agent_class=agent,
        name=name,
        version=agent.version,
        description=description,
        config_model=agent.config_model,
        commands=commands,
    )


def describe(agent: type[Agent[Any]]) -> AgentTypeManifest:
    """The type's manifest: plain data with every JSON schema, ready for the wire."""
    return definition(agent).manifest()
