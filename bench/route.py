"""`python -m bench.route [--requests N]`: the gateway's own CPU per REST command, in process.

Not a benchmark (nothing is registered, no broker): `system.rest_command16` is noisy on a
shared machine, and the gateway's share of it is mostly Python per request. This drives
`POST /api/vsm/agents/{id}/command` straight through ASGI (no socket) and prints the CPU
time per request, best of 5 batches, of

- `raw_asgi`: a bare ASGI app that reads the body, parses it and answers (the floor's shape);
- `litestar`: a bare Litestar route with the same path parameter, the same `CommandInput`
  body and a pre-encoded JSON `Response` (what Litestar itself costs such a route);
- `gateway`: the gateway's app (`create_app`: every middleware, the gate, the route, the
  real `Bus.ask` with its envelope and the reply's validation), only the broker replaced:
  the requester answers at once with the reply an agent sends (operations' `get` once, for
  the agent's type, then a `CommandResult`);
- `gateway_no_edge`: the same without the console's bridge and the gate (their cost).

The differences say where the gateway's time goes beyond the libraries it is built on.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import uvloop
from litestar import Litestar, MediaType, Response, post
from litestar.params import FromPath, JSONBody

from vsm.contract.envelope import Envelope
from vsm.contract.operations import AgentDescription, AgentInfo, CommandResult
from vsm.kit.runtime import Runtime
from vsm.mcp_gateway.app import create_app
from vsm.mcp_gateway.rest.agents import CommandInput
from vsm.mcp_gateway.settings import Settings

TOKEN = "bench-route-token-0123456789"
AGENT = "bench-agent"
PATH = f"/api/vsm/agents/{AGENT}/command"
BODY = json.dumps({"type": "process_data", "data": {"payload": "x" * 64}}).encode()
ANSWER = b'{"ok":true}'
BATCHES = 5


def reply(body: Any) -> bytes:
    return Envelope.wrap(body, source="operations").model_dump_json().encode()


DESCRIBED = reply(
    AgentDescription(
        agent=AgentInfo(
            agent_id=AGENT,
            agent_type="worker",
            allocation=1,
            max_allocation=1,
            spawned_at=datetime.now(UTC),
        )
    )
)
RESULT = reply(
    CommandResult(
        agent_id=AGENT,
        command_id="bench",
        command_type="process_data",
        status="ok",
        result={"checksum": "0" * 64},
        processing_time_ms=0.1,
    )
)


class Delivered:
    """What the requester hands back: only the body is read."""

    def __init__(self, body: bytes) -> None:
        self.body = body


async def answered(
    exchange: str, routing_key: str, body: bytes, properties: Any, timeout: float
) -> Delivered:
    """The broker and the agent replaced: each request answered at once."""
    return Delivered(DESCRIBED if routing_key.endswith(".get") else RESULT)


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    event = await receive()
    json.loads(event["body"])
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


@post("/api/vsm/agents/{agent_id:str}/command", status_code=200)
async def bare_command(agent_id: FromPath[str], data: JSONBody[CommandInput]) -> Response[Any]:
    return Response(ANSWER, media_type=MediaType.JSON)


def gateway(edge: bool) -> Any:
    """The gateway's app, its requester answered at once; without `edge`, built without the
    console's bridge and the gate (the app's `middleware`)."""
    settings = Settings(
        vsm_operate_tokens=TOKEN, vsm_namespace="bench-route", rest_rate_limit=1_000_000
    )
    http_app = Runtime.http_app

    def without_edge(runtime: Runtime, handlers: Any, **options: Any) -> Litestar:
        return http_app(runtime, handlers, **{**options, "middleware": []})

    with patch.object(Runtime, "http_app", http_app if edge else without_edge):
        app = create_app(settings)
    app.state.runtime.bus.requester.request = answered
    return app


async def per_request_us(app: Any, n: int) -> float:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    statuses: list[int] = []

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            statuses.append(event["status"])

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "headers": headers,
            "state": {},
        }
        await app(scope, receive, send)

    for _ in range(min(n, 500)):  # warm-up, and the agent's type learnt
        await one()
    best = float("inf")
    for _ in range(BATCHES):
        began = time.process_time()
        for _ in range(n):
            await one()
        best = min(best, (time.process_time() - began) / n * 1e6)
    if set(statuses) != {200}:
        raise RuntimeError(f"not every request answered 200: {sorted(set(statuses))}")
    return best


async def main(n: int) -> None:
    apps = {
        "raw_asgi": raw_asgi,
        "litestar": Litestar([bare_command], logging_config=None),
        "gateway": gateway(edge=True),
        "gateway_no_edge": gateway(edge=False),
    }
    for name, app in apps.items():
        print(f"{name:16s} {await per_request_us(app, n):7.1f} us CPU per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per batch")
    uvloop.run(main(parser.parse_args().requests))
