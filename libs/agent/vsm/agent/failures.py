"""How a command fails: every way is a `CommandError` with a stable code.

| code | when |
|---|---|
| `invalid_input` | the data does not fit the command's input model (each field named) |
| `invalid_output` | the agent answered something its output model does not admit (its bug) |
| `capability_not_supported` | the type declares no such command |
| `deadline_exceeded` | the command's deadline passed before it finished |
| `cancelled` | the host cancelled it (`throttled`: S3 took the agent's last slot) |
| `agent_terminated` | the agent is stopped |
| `agent_error` | anything else the command raised: the exception's class only, no trace |
| a `Refused`'s own code | the command declined on purpose (`raise Refused("quota", ...)`) |
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from vsm.contract.errors import MESSAGE_LIMIT, Refused
from vsm.contract.operations import CommandError

__all__ = [
    "agent_error",
    "cancelled",
    "invalid",
    "not_supported",
    "refusal",
    "terminated",
]

MAX_PROBLEMS = 20
FIELD_LIMIT = 256
"""A field's name is cut to this: a caller's unknown key may be as long as its message."""


def invalid(error: ValidationError, code: str, root: str) -> CommandError:
    """Data that does not fit a model: each problem named by its field (`<root>.<path>`), in
    the message and as `details.errors` for a form to place."""
    problems = [
        {"field": ".".join([root, *map(str, p["loc"])])[:FIELD_LIMIT], "message": p["msg"]}
        for p in error.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]
    ]
    return CommandError(
        code=code,
        message="; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])[:MESSAGE_LIMIT],
        details={"errors": problems},
    )


def refusal(refused: Refused) -> CommandError:
    """A refusal keeps its code, message and details (when they make a valid error, the
    details JSON data); otherwise it is the agent's error."""
    try:
        return CommandError(
            code=refused.code,
            message=refused.message[:MESSAGE_LIMIT],
            details=to_jsonable_python(refused.details),
        )
    except (ValidationError, PydanticSerializationError):
        return agent_error(refused)


def agent_error(error: BaseException) -> CommandError:
    """An unexpected failure: its class is named, nothing of its text or trace leaves."""
    return CommandError(
        code="agent_error",
        message=f"the agent failed on this command ({type(error).__name__})",
        details={"exception": type(error).__name__},
    )


def cancelled(reason: str) -> CommandError:
    if reason == "deadline":
        return CommandError(
            code="deadline_exceeded", message="the command's deadline passed before it finished"
        )
    return CommandError(
        code="cancelled", message=f"cancelled: {reason}", details={"reason": reason}
    )


def not_supported(agent_type: str, command: str, commands: list[str]) -> CommandError:
    return CommandError(
        code="capability_not_supported",
        message=f"{agent_type} does not support {command[:64]!r}",
        details={"capabilities": commands},
    )


def terminated() -> CommandError:
    return CommandError(code="agent_terminated", message="the agent was terminated")
