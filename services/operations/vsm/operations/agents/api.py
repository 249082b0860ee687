"""`api`: HTTP calls to allow-listed base URLs only, with timeouts, retries and mapping.

Every call carries `Idempotency-Key: <command id>` (unless the command sets its own): the
same on each retry, on a redelivery and on a sender's resend, so the service called can do
the effect once even when operations crashed between the effect and the ack. Operations'
own memory of done commands dies with the process; the called service's does not.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from vsm.operations.agent import current_command
from vsm.operations.agents.base import AgentConfig, AgentType, CommandFailed, Passive, Resources

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BODY_CHARS = 64 * 1024
IDEMPOTENCY_KEY = "Idempotency-Key"


class ApiConfig(AgentConfig):
    base_urls: list[HttpUrl] = Field(min_length=1, max_length=32)
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.2, ge=0, le=10)
    mapping: dict[str, str] = Field(
        default_factory=dict, description="Result field -> dotted path into the JSON response."
    )


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(
        min_length=1, max_length=2048, description="Absolute, or relative to the first base URL."
    )
    params: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)


def allowed(url: str, bases: list[str]) -> bool:
    """`url` lies under one of `bases`: same scheme, host and port, and under its path."""
    target = urlsplit(url)
    for base in bases:
        allowed_base = urlsplit(base)
        prefix = allowed_base.path.rstrip("/")
        same_origin = (target.scheme, target.netloc) == (allowed_base.scheme, allowed_base.netloc)
        if same_origin and (target.path == prefix or target.path.startswith(prefix + "/")):
            return True
    return False


def idempotent(headers: dict[str, str]) -> dict[str, str]:
    """`headers` with the command id as idempotency key, unless they carry one already."""
    command_id = current_command.get()
    if command_id is None or any(name.lower() == "idempotency-key" for name in headers):
        return headers
    return {**headers, IDEMPOTENCY_KEY: command_id}


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path (`items.0.name`), or None."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


class ApiAgent(Passive):
    def __init__(self, config: ApiConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self.bases = [str(url) for url in config.base_urls]

    async def execute(self, command: str, data: dict[str, Any]) -> dict[str, Any]:
        call = Call.model_validate(data)
        url = urljoin(self.bases[0], call.url)
        if not allowed(url, self.bases):
            raise CommandFailed("url_not_allowed", f"{url} is not under an allowed base URL")
        response = await self._send(call, url, idempotent(call.headers))
        return self._map(response)

    async def _send(self, call: Call, url: str, headers: dict[str, str]) -> httpx.Response:
        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            try:
                response = await self.http.request(
                    call.method,
                    url,
                    params=call.params,
                    json=call.json_body,
                    headers=headers,
                    timeout=self.config.timeout_s,
                )
            except httpx.TimeoutException as error:
                if last:
                    raise CommandFailed("upstream_timeout", str(error) or "timed out") from error
            except httpx.HTTPError as error:
                if last:
                    raise CommandFailed("upstream_unreachable", str(error)) from error
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return response
            await asyncio.sleep(self.config.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _map(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:MAX_BODY_CHARS]
        result: dict[str, Any] = {"status_code": response.status_code, "body": body}
        if self.config.mapping:
            result["mapped"] = {name: dig(body, path) for name, path in self.config.mapping.items()}
        if response.status_code >= 400:
            raise CommandFailed(
                "upstream_error", f"upstream answered {response.status_code}", result
            )
        return result


def build(config: ApiConfig, resources: Resources) -> ApiAgent:
    return ApiAgent(config, resources.http)


API = AgentType(
    name="api",
    description="Calls HTTP APIs under allow-listed base URLs, with retries and mapping.",
    config_model=ApiConfig,
    capabilities={"call": "`method` `url` (`params`, `json`, `headers`) -> status, body, mapped"},
    build=build,
)
