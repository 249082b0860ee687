"""The one way the CLI talks to a viable system: the REST API of mcp-gateway.

Every answer is JSON; an error status becomes `Refused` naming what the gateway said, and a
gateway that cannot be reached becomes `Unreachable`, so each command can stay a few lines.
"""

from __future__ import annotations

from typing import Any

import httpx

from vsm.cli.errors import Refused, Unreachable
from vsm.cli.settings import Target

API = "/api/vsm"
TIMEOUT_S = 40.0
"""Longer than the gateway's own request deadline (30 s for an agent command)."""


def explain(response: httpx.Response) -> Refused:
    """One line from an error answer: status, the gateway's code and message, bad fields."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error") or ("not_found" if response.status_code == 404 else "error"))
    message = str(body.get("message") or body.get("detail") or response.reason_phrase)
    details = body.get("details")
    nested = details.get("errors") if isinstance(details, dict) else None
    fields = body.get("fields") or nested or []
    named = [f"{f.get('field')}: {f.get('message')}" for f in fields if isinstance(f, dict)]
    named = [n for n in named if n not in message]
    if named:
        message = f"{message} ({'; '.join(named)})"
    line = f"{response.request.method} {response.request.url.path}: {response.status_code} "
    return Refused(f"{line}{code}: {message}", response.status_code, code)


class Gateway:
    def __init__(self, target: Target, timeout: float = TIMEOUT_S) -> None:
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.url = target.url
        self.http = httpx.Client(base_url=target.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self.send("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.send("POST", path, body, params)

    def put(self, path: str, body: Any, **params: Any) -> Any:
        return self.send("PUT", path, body, params)

    def delete(self, path: str, **params: Any) -> Any:
        return self.send("DELETE", path, params=params)

    def send(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(method, API + path, json=body, params=query)
        except httpx.TimeoutException as error:
            raise Unreachable(f"the gateway at {self.url} did not answer in time") from error
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise Unreachable(f"cannot reach the gateway at {self.url}: {reason}") from error
        if response.status_code >= 400:
            raise explain(response)
        return response.json() if response.content else None
