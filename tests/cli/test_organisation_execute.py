"""`vsm apply` carries out a plan's agent creations as bulk spawns and its removals as bulk
terminates, against a fake gateway on loopback that records what it was asked: one
`POST /agents:bulk` (or `:bulk-terminate`) per run of them, each item carried out reported
done and the first refused one stopping the run; one call per agent from a gateway without
the bulk route."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vsm.cli.errors import Refused
from vsm.cli.gateway import Gateway
from vsm.cli.organisation.execute import execute
from vsm.cli.organisation.steps import Step
from vsm.cli.settings import Target


class FakeGateway(ThreadingHTTPServer):
    bulk = True
    bulk_terminate = True
    refuse: frozenset[str] = frozenset()
    asked: list[tuple[str, str, Any]]


class Handler(BaseHTTPRequestHandler):
    server: FakeGateway

    def log_message(self, *_: object) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_DELETE(self) -> None:
        self.server.asked.append(("DELETE", self.path, None))
        self.answer(200, {"agent_id": self.path.rsplit("/", 1)[-1], "state": "terminated"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.asked.append(("POST", self.path, body))
        if self.path == "/api/vsm/agents:bulk-terminate":
            if not self.server.bulk_terminate:
                self.answer(404, {"error": "not_found", "message": "no route"})
                return
            ids = body["agent_ids"]
            self.answer(200, {"results": [self.ended(i, a) for i, a in enumerate(ids)]})
        elif self.path.startswith("/api/vsm/agents:bulk"):
            if not self.server.bulk:
                self.answer(404, {"error": "not_found", "message": "no route"})
                return
            self.answer(
                200, {"results": [self.outcome(i, a) for i, a in enumerate(body["agents"])]}
            )
        else:
            self.answer(201, {"agent_id": f"id-{body['name']}", "name": body["name"]})

    def outcome(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        if item["name"] in self.server.refuse:
            return {
                "index": index,
                "status": 409,
                "agent": None,
                "error": "quota_exceeded",
                "message": "root already runs 2 agents",
                "details": {},
            }
        return {"index": index, "status": 201, "agent": {"agent_id": f"id-{item['name']}"}}

    def ended(self, index: int, agent_id: str) -> dict[str, Any]:
        if agent_id in self.server.refuse:
            return {
                "index": index,
                "agent_id": agent_id,
                "status": 404,
                "agent": None,
                "error": "agent_not_found",
                "message": f"no running agent {agent_id!r}",
                "details": {"agent_id": agent_id},
            }
        agent = {"agent_id": agent_id, "state": "terminated"}
        return {"index": index, "agent_id": agent_id, "status": 200, "agent": agent}


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    server = FakeGateway(("127.0.0.1", 0), Handler)
    server.asked = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def create(name: str, vsm_id: str = "root") -> Step:
    return Step("create", "agent", vsm_id, name, "worker", {"type": "worker", "name": name})


def remove(name: str, vsm_id: str = "root") -> Step:
    return Step("remove", "agent", vsm_id, name, "not in the file", {}, f"id-{name}")


def run(fake: FakeGateway, steps: list[Step], done: list[str] | None = None) -> list[str]:
    """Carry out `steps` against the fake; the names of the steps done (also into `done`)."""
    host, port = fake.server_address[:2]
    gateway = Gateway(Target(f"http://{host!s}:{port}", None))
    done = [] if done is None else done
    try:
        execute(gateway, steps, "test", lambda step, _: done.append(step.name))
    finally:
        gateway.close()
    return done


def test_agents_created_in_a_row_go_in_one_bulk_spawn_per_system(fake: FakeGateway) -> None:
    steps = [create("a"), create("b"), create("c", "root/x"), create("d", "root/x")]
    assert run(fake, steps) == ["a", "b", "c", "d"]
    assert [(path, [a["name"] for a in body["agents"]]) for _, path, body in fake.asked] == [
        ("/api/vsm/agents:bulk?vsm_id=root", ["a", "b"]),
        ("/api/vsm/agents:bulk?vsm_id=root%2Fx", ["c", "d"]),
    ]


def test_the_spawned_items_are_done_and_the_first_refused_one_stops_the_run(
    fake: FakeGateway,
) -> None:
    fake.refuse = frozenset({"b", "c"})
    done: list[str] = []
    steps = [create("a"), create("b"), create("c"), create("d", "root/y")]
    with pytest.raises(Refused) as refused:
        run(fake, steps, done)
    assert done == ["a"]
    assert (refused.value.status, refused.value.code) == (409, "quota_exceeded")
    assert "agent b of root" in str(refused.value)
    assert "1 more refused" in str(refused.value)
    assert len(fake.asked) == 1  # root/y was never asked for


def test_a_gateway_without_the_bulk_route_gets_one_spawn_per_agent(fake: FakeGateway) -> None:
    fake.bulk = False
    assert run(fake, [create("a"), create("b")]) == ["a", "b"]
    assert [path for _, path, _ in fake.asked] == [
        "/api/vsm/agents:bulk?vsm_id=root",
        "/api/vsm/agents?vsm_id=root",
        "/api/vsm/agents?vsm_id=root",
    ]


def test_agents_removed_in_a_row_go_in_one_bulk_terminate_per_system(fake: FakeGateway) -> None:
    steps = [remove("a"), remove("b"), create("c"), remove("d", "root/x")]
    assert run(fake, steps) == ["a", "b", "c", "d"]
    assert [(path, body) for _, path, body in fake.asked] == [
        ("/api/vsm/agents:bulk-terminate", {"agent_ids": ["id-a", "id-b"], "reason": "test"}),
        ("/api/vsm/agents:bulk?vsm_id=root", {"agents": [{"type": "worker", "name": "c"}]}),
        ("/api/vsm/agents:bulk-terminate", {"agent_ids": ["id-d"], "reason": "test"}),
    ]


def test_the_terminated_items_are_done_and_the_first_refused_one_stops_the_run(
    fake: FakeGateway,
) -> None:
    fake.refuse = frozenset({"id-b"})
    done: list[str] = []
    with pytest.raises(Refused) as refused:
        run(fake, [remove("a"), remove("b"), remove("c"), create("d")], done)
    assert done == ["a", "c"]
    assert (refused.value.status, refused.value.code) == (404, "agent_not_found")
    assert "POST /agents:bulk-terminate: agent b of root" in str(refused.value)
    assert len(fake.asked) == 1  # d was never asked for


def test_a_gateway_without_the_bulk_terminate_route_gets_one_delete_per_agent(
    fake: FakeGateway,
) -> None:
    fake.bulk_terminate = False
    assert run(fake, [remove("a"), remove("b"), create("c")]) == ["a", "b", "c"]
    assert [(method, path) for method, path, _ in fake.asked] == [
        ("POST", "/api/vsm/agents:bulk-terminate"),
        ("DELETE", "/api/vsm/agents/id-a"),
        ("DELETE", "/api/vsm/agents/id-b"),
        ("POST", "/api/vsm/agents:bulk?vsm_id=root"),  # spawns still go in bulk
    ]
