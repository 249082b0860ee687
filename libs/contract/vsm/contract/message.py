"""Base of every message body, and the registry that maps a CloudEvents `type` to its model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Message", "message_types", "model_for"]

_REGISTRY: dict[str, type[Message]] = {}


class Message(BaseModel):
    """A versioned message body. `TYPE` is its CloudEvents type, e.g. `vsm.health.report.v1`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        message_type = cls.__dict__.get("TYPE")
        if message_type is None:
            return
        known = _REGISTRY.get(message_type)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"message type {message_type!r} is taken by {known.__qualname__}")
        _REGISTRY[message_type] = cls


def message_types() -> dict[str, type[Message]]:
    """Every registered message type, for validation on receive and for the docs."""
    return dict(_REGISTRY)


def model_for(message_type: str) -> type[Message] | None:
    return _REGISTRY.get(message_type)
