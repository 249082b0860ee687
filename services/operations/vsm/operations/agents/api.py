"""`api`: HTTP calls under the agent's base URLs, with timeouts, retries and mapping.

The base URLs are the caller's choice within the operator's egress policy (checked at spawn),
and every call is checked again: the URL as the server will read it must lie under one of
them, and the egress client refuses what the policy does not allow when it connects.

Every call carries `Idempotency-Key: <command id>` (unless the command sets its own): the
same on each retry, on a redelivery and on a sender's resend, so the service called can do
the effect once even when operations crashed between the effect and the ack. Operations'
own memory of done commands dies with the process; the called service's does not.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from vsm.agent import Agent, Context, command
from vsm.kit.egress import Blocked, Destination, destination
from vsm.operations.agents.base import AgentConfig, CommandFailed, Crash, Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.sdk import hosted_type

if TYPE_CHECKING:
    from vsm.kit.egress.client import Fetched

NAME = "api"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
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
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters.")
    json_body: Any = Field(default=None, alias="json", description="A JSON body to send.")
    headers: dict[str, str] = Field(default_factory=dict)


class Called(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status_code: int
    body: Any = Field(description="The JSON document answered, or its text.")
    truncated: bool = Field(description="The body was cut at the size the operator allows.")
    mapped: dict[str, Any] | None = Field(
        default=None, description="Each field of the agent's `mapping` (when it has one)."
    )


def under_bases(url: str, bases: list[str]) -> Destination:
    """`url` (relative to the first base) as the server will read it, when that lies under
    one of `bases` by whole path segments; else `Blocked`."""
    target = destination(urljoin(bases[0], url))
    if not any(target.within(destination(base)) for base in bases):
        raise Blocked("outside_agent", f"{target.url} is not under this agent's base_urls")
    return target


def idempotent(headers: dict[str, str], command_id: str) -> dict[str, str]:
    """`headers` with the command id as idempotency key, unless they carry one already."""
    if any(name.lower() == "idempotency-key" for name in headers):
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


class ApiAgent(Agent[ApiConfig]):
    """Calls HTTP APIs under its base URLs (within the operator's egress policy), with
    retries and mapping."""

    name = NAME
    outbound: Outbound | None = None
    """The host's egress client (`borrow`)."""

    def borrow(self, resources: Resources, crash: Crash | None = None) -> None:
        self.outbound = resources.outbound

    @property
    def bases(self) -> list[str]:
        return [str(url) for url in self.config.base_urls]

    @command(
        description="`method` `url` (`params`, `json`, `headers`) -> status, body, truncated, "
        "mapped"
    )
    async def call(self, call: Call, ctx: Context) -> Called:
        outbound = self._outbound()
        try:
            target = under_bases(call.url, self.bases)
        except Blocked as refused:
            raise outbound.refusal(NAME, refused) from refused
        headers = idempotent(call.headers, ctx.command_id)
        response = await self._send(outbound, call, target.url, headers)
        return Called.model_validate(self._map(response))

    def _outbound(self) -> Outbound:
        if self.outbound is None:
            raise CommandFailed("agent_not_started", "the host lent this agent no egress client")
        return self.outbound

    async def _send(
        self, outbound: Outbound, call: Call, url: str, headers: dict[str, str]
    ) -> Fetched:
        import httpx  # on the first call only: a service without api agents never loads it

        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            try:
                response = await outbound.fetch(
                    NAME,
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

    def _map(self, response: Fetched) -> dict[str, Any]:
        """JSON when the body is a whole JSON document; else its text (cut at the cap)."""
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        result: dict[str, Any] = {
            "status_code": response.status_code,
            "body": body,
            "truncated": response.truncated,
        }
        if self.config.mapping:
            result["mapped"] = {name: dig(body, path) for name, path in self.config.mapping.items()}
        if response.status_code >= 400:
            raise CommandFailed(
                "upstream_error", f"upstream answered {response.status_code}", result
            )
        return result


def destinations(config: ApiConfig) -> list[tuple[str, str]]:
    return [(f"config.base_urls.{i}", str(url)) for i, url in enumerate(config.base_urls)]


API = hosted_type(ApiAgent, built_in=True, destinations=destinations)
