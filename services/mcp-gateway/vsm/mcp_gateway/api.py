"""The REST API: each route is one AMQP request to the system that owns the answer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException

from vsm.contract.health import StatusQuery, SystemStatus
from vsm.kit.bus import Bus, RequestFailed, UnexpectedReply
from vsm.kit.rpc import RequestTimeout


def error_response(status_code: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response({"error": code, "message": message}, status_code=status_code)


def on_request_timeout(_: Request[Any, Any, Any], error: RequestTimeout) -> Response[Any]:
    return error_response(504, "timeout", str(error))


def on_request_failed(_: Request[Any, Any, Any], error: RequestFailed) -> Response[Any]:
    reply = error.reply
    status = (
        404
        if reply.code.endswith("not_found")
        else 422
        if reply.code.startswith("invalid")
        else 502
    )
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
