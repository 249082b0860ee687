"""The REST API: each route is one AMQP request to the system that owns the answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from pydantic import TypeAdapter, ValidationError

from vsm.contract.envelope import VsmId
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.kit.bus import Bus, RequestFailed, UnexpectedReply
from vsm.kit.rpc import RequestTimeout


def error_response(status_code: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response({"error": code, "message": message}, status_code=status_code)


def on_request_timeout(_: Request[Any, Any, Any], error: RequestTimeout) -> Response[Any]:
    return error_response(504, "timeout", str(error))


CONFLICTS = frozenset({"name_taken", "meta_system_exists", "has_children", "damped"})
REFUSALS = frozenset({"over_budget", "quota_exceeded", "cyclic_vsm_id"})


def status_of(code: str) -> int:
    """The HTTP status for a system's refusal code: 404 unknown, 409 conflict, 422 refused."""
    if code.endswith(("not_found", "unknown_agent")):
        return 404
    if code in CONFLICTS:
        return 409
    if code.startswith("invalid") or code in REFUSALS:
        return 422
    return 502


def on_request_failed(_: Request[Any, Any, Any], error: RequestFailed) -> Response[Any]:
    reply = error.reply
    status = status_of(reply.code)
    return Response(
        {"error": reply.code, "message": reply.message, "details": reply.details},
        status_code=status,
    )


BusDep = NamedDependency[Bus]
"""How a route asks for the bus (Litestar injects it by name)."""


def on_invalid(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """422 naming each bad field (Litestar's default is a 400); malformed JSON stays a 400."""
    problems = error.extra if isinstance(error.extra, list) else []
    fields = [
        {"field": p.get("key"), "message": p.get("message")}
        for p in problems
        if isinstance(p, dict)
    ]
    return Response(
        {
            "error": "invalid_request" if fields else "bad_request",
            "message": error.detail,
            "fields": fields,
        },
        status_code=422 if fields else 400,
    )


def on_unexpected_reply(_: Request[Any, Any, Any], error: UnexpectedReply) -> Response[Any]:
    return error_response(502, "unexpected_reply", str(error))


VSM_ID: TypeAdapter[str] = TypeAdapter(VsmId)
VsmIdParam = Annotated[str | None, QueryParameter(name="vsm_id", required=False)]
"""Which viable system a route is about (the root when absent)."""


def system(vsm_id: str | None) -> str | None:
    """The `vsm_id` query parameter, validated (422 naming it when malformed)."""
    if vsm_id is None:
        return None
    try:
        return VSM_ID.validate_python(vsm_id)
    except ValidationError as error:
        raise ValidationException(
            detail="invalid vsm_id",
            extra=[{"key": "vsm_id", "message": str(error.errors()[0]["msg"])}],
        ) from error


EXCEPTION_HANDLERS: dict[Any, Any] = {
    RequestTimeout: on_request_timeout,
    RequestFailed: on_request_failed,
    UnexpectedReply: on_unexpected_reply,
    ValidationException: on_invalid,
}


class SystemController(Controller):
    path = "/api/vsm"
    tags = ["system"]

    @get("/status")
    async def status(self, bus: BusDep) -> SystemStatus:
        """Every system and gateway with its state (up/degraded/down) and last-seen time."""
        return await bus.query("queen", "status", StatusQuery(), SystemStatus)


def dependencies(bus: Bus) -> dict[str, Provide]:
    async def provide_bus() -> Bus:
        return bus

    return {"bus": Provide(provide_bus)}
