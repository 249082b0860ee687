"""What every REST controller shares: the error body and the documented answers, the
exception handlers, the bus dependency and the `vsm_id` parameter."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, Operation, SecurityScheme
from litestar.params import QueryParameter
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from vsm.contract.envelope import VsmId
from vsm.contract.errors import Refused
from vsm.kit.bus import Bus, UnexpectedReply
from vsm.kit.rpc import RequestTimeout


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """What every error of the REST API answers: a stable `error` code, a `message` for
    people, each bad `fields` of a refused request, and the `details` a system gave."""

    error: str
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


ANSWERS = {
    400: "Malformed request: the body is not JSON.",
    401: "No valid bearer token (`Authorization: Bearer <token>`); `WWW-Authenticate` says so.",
    403: "A read token on a route that changes state, or a browser `Origin` that is not allowed.",
    404: "No such agent, policy, message, approval or viable system.",
    409: "Conflict: the name is taken, the meta-system exists or has children, the agent is "
    "damped, the approval is already decided or expired, or a quota is reached "
    "(`quota_exceeded`: agents per viable system, children per parent, depth, meta-systems in "
    "total; the message names the setting), or no live agent host offers the agent type "
    "(`no_host_for_type`).",
    413: "The body is larger than the gateway's cap on every route (`REST_MAX_BODY_BYTES`, "
    "1 MiB by default).",
    415: "The body is not declared JSON (`Content-Type: application/json`).",
    421: "The `Host` is not one this gateway serves (DNS rebinding).",
    422: "Invalid input (`fields` names each bad field), or refused by the system that owns it "
    "(`details` says why).",
    429: "Too many requests: past the caller's REST rate (`REST_RATE_LIMIT` a minute per token; "
    "`Retry-After` says when to retry), or too many notes between one pair of agents.",
    502: "The system that owns the answer failed or answered something unexpected.",
    503: "No token is configured on the gateway: it serves nothing but its probes.",
    504: "No answer within the timeout.",
}
BEARER = "bearer"
"""The security scheme every route requires (see vsm.mcp_gateway.access)."""
OPENAPI_COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="A read token (GET routes) or an operate token (every route).",
        )
    }
)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error answers of a route, each an `ErrorBody` (a route's `responses=`)."""
    return {
        status: ResponseSpec(ErrorBody, description=ANSWERS[status], generate_examples=False)
        for status in statuses
    }


EDGE = errors(401, 403, 421, 429, 503)
"""What the edge's gate answers on any route, before the route runs."""
MUTATION = EDGE | errors(415)
"""A route that changes state: it needs an operate token, and JSON for any body."""
PARAMS = errors(422)
"""A route with query or path parameters that can be invalid."""
BODY = MUTATION | errors(400, 413, 422)
"""A route with a JSON body (every one changes state)."""
ASKS = errors(502, 504)
"""A route that waits for a system's answer."""
NOT_FOUND = errors(404)
CONFLICT = errors(409)
LOOKUP = PARAMS | NOT_FOUND | ASKS
"""A route that asks a system about something named in its parameters."""


@dataclass
class RestOperation(Operation):
    """Litestar documents a 400 for every route with parameters; without a body nothing can
    be malformed (a bad parameter answers 422), so a route without one documents none."""

    def __post_init__(self) -> None:
        if self.request_body is None and self.responses:
            self.responses.pop("400", None)


def error_response(status_code: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response({"error": code, "message": message}, status_code=status_code)


def on_request_timeout(_: Request[Any, Any, Any], error: RequestTimeout) -> Response[Any]:
    return error_response(504, "timeout", str(error))


CONFLICTS = frozenset(
    {
        "name_taken",
        "meta_system_exists",
        "has_children",
        "damped",
        "approval_closed",
        "quota_exceeded",
        "no_host_for_type",
    }
)
REFUSALS = frozenset({"over_budget", "cyclic_vsm_id", "identity_reserved", "approvals_full"})


def status_of(code: str) -> int:
    """The HTTP status for a system's refusal code: 404 unknown, 409 conflict, 422 refused."""
    if code.endswith(("not_found", "unknown_agent")):
        return 404
    if code in CONFLICTS:
        return 409
    if code.startswith("invalid") or code in REFUSALS:
        return 422
    return 502


def refused(error: Refused, status: int) -> Response[Any]:
    """A refusal as the `ErrorBody` it answers: its code, message and details."""
    body = {"error": error.code, "message": error.message, "details": error.details}
    return Response(body, status_code=status)


def on_refused(_: Request[Any, Any, Any], error: Refused) -> Response[Any]:
    """A system's refusal (a `RequestFailed` is one) with the status its code stands for."""
    return refused(error, status_of(error.code))


BusDep = NamedDependency[Bus]
"""How a route asks for the bus (Litestar injects it by name)."""


def problems(error: ValidationException) -> list[dict[str, str]]:
    """Each bad field of a refused request: Litestar lists them in `extra`, except a missing
    required parameter, which it raises from the `KeyError` of its name."""
    if isinstance(error.__cause__, KeyError) and error.__cause__.args:
        return [{"field": str(error.__cause__.args[0]), "message": "missing"}]
    listed = error.extra if isinstance(error.extra, list) else []
    return [
        {"field": str(p.get("key") or ""), "message": str(p.get("message") or "")}
        for p in listed
        if isinstance(p, dict)
    ]


def on_invalid(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """422 naming each bad field (Litestar's default is a 400); without any, a 400."""
    fields = problems(error)
    return Response(
        {
            "error": "invalid_request" if fields else "bad_request",
            "message": error.detail,
            "fields": fields,
        },
        status_code=422 if fields else 400,
    )


def on_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Litestar's own refusals (unknown route, wrong method, body too large) as an `ErrorBody`."""
    code = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    body = {"error": code, "message": error.detail}
    return Response(body, status_code=error.status_code, headers=error.headers)


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
    Refused: on_refused,
    UnexpectedReply: on_unexpected_reply,
    ValidationException: on_invalid,
    HTTPException: on_http_error,
}


def dependencies(bus: Bus) -> dict[str, Provide]:
    async def provide_bus() -> Bus:
        return bus

    return {"bus": Provide(provide_bus, use_cache=True)}  # one bus for good
