"""The api agent against real listeners on loopback: retries and mapping; and what it must
never do: reach an address the operator did not name, leave its base path, follow a
redirect, or hold an unbounded body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.commands import perform
from tests.support.listener import Listener, Reply
from tests.support.spans import named, recorded_spans
from vsm.agent import AgentIdentity
from vsm.kit.egress import EgressPolicy, OnDemand, destination
from vsm.operations.agents.api import ApiAgent, ApiConfig
from vsm.operations.agents.base import CommandFailed, Resources
from vsm.operations.agents.outbound import Outbound


async def execute(agent: ApiAgent, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """The command as the runner does it: input validated, then the agent's method."""
    return await perform(agent, command, data)


Refusals = list[tuple[str, str]]


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


@pytest.fixture
def refusals() -> Refusals:
    return []


class Operator:
    """What the operator configured, and the agents built under it."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals
        self.clients: list[Outbound] = []

    def agent(
        self,
        base: str,
        allowed: list[str] | None = None,
        private: tuple[str, ...] = (),
        max_body_bytes: int = 64 * 1024,
        resolver: Any = None,
        **config: Any,
    ) -> ApiAgent:
        policy = EgressPolicy.parse(allowed or [base], private, max_body_bytes)
        extra = {} if resolver is None else {"resolver": resolver}
        http = OnDemand(policy, 5.0, **extra)
        outbound = Outbound(http, policy, lambda kind, why: self.refusals.append((kind, why)))
        self.clients.append(outbound)
        agent = ApiAgent(ApiConfig(base_urls=[base], **config), AgentIdentity("api-1", "api"))
        agent.borrow(Resources(outbound=outbound, llm=None, llm_retry_deadline_s=0.0))
        return agent


@pytest.fixture
async def operator(refusals: Refusals) -> AsyncIterator[Operator]:
    made = Operator(refusals)
    yield made
    for outbound in made.clients:
        await outbound.http.aclose()


def endpoint_of(url: str) -> str:
    return destination(url).endpoint


async def test_a_call_retries_transient_failures_and_maps_the_response(
    listener: Listener, operator: Operator
) -> None:
    listener.replies.extend([Reply(503, {}), Reply(200, {"items": [{"name": "a"}], "total": 1})])
    base = f"{listener.url}/v1/"
    agent = operator.agent(
        base, private=(endpoint_of(base),), backoff_s=0, mapping={"first": "items.0.name"}
    )
    result = await execute(agent, "call", {"url": "things", "params": {"q": "x"}})
    assert result["status_code"] == 200
    assert result["mapped"] == {"first": "a"}
    assert result["truncated"] is False
    assert listener.paths == ["/v1/things?q=x", "/v1/things?q=x"]


LOOPBACK = ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"]


@pytest.mark.parametrize("host", LOOPBACK)
async def test_loopback_is_never_reached_unless_the_operator_names_its_endpoint(
    listener: Listener, operator: Operator, refusals: Refusals, host: str
) -> None:
    base = f"http://{host}:{listener.url.rsplit(':', 1)[1]}/v1/"
    with pytest.raises(CommandFailed) as refused:
        await execute(operator.agent(base), "call", {"url": "x"})
    assert refused.value.code == "destination_not_allowed"
    assert refused.value.details == {"reason": "private_address"}
    assert listener.connections == 0
    assert refusals == [("api", "private_address")]

    named = operator.agent(base, private=(endpoint_of(base),))
    assert (await execute(named, "call", {"url": "x"}))["status_code"] == 200
    assert listener.connections == 1


async def test_ipv6_loopback_is_never_reached_unless_named(operator: Operator) -> None:
    with Listener("::1") as listener:
        base = f"{listener.url}/"
        with pytest.raises(CommandFailed, match="destination_not_allowed"):
            await execute(operator.agent(base), "call", {"url": "x"})
        assert listener.connections == 0
        named = operator.agent(base, private=(endpoint_of(base),))
        assert (await execute(named, "call", {"url": "x"}))["status_code"] == 200


async def test_a_name_that_resolves_to_loopback_is_never_reached_unless_named(
    listener: Listener, operator: Operator
) -> None:
    """`upstream.test` is resolved by the test's resolver, standing in for DNS: the guard
    judges the address it gets back, as it would a public name rebound to 127.0.0.1."""
    port = int(listener.url.rsplit(":", 1)[1])

    async def resolver(host: str, _: int) -> list[str]:
        return ["127.0.0.1"] if host == "upstream.test" else []

    base = f"http://upstream.test:{port}/"
    with pytest.raises(CommandFailed, match=r"upstream\.test is 127\.0\.0\.1, loopback"):
        await execute(operator.agent(base, resolver=resolver), "call", {"url": "x"})
    assert listener.connections == 0
    named = operator.agent(base, private=(f"upstream.test:{port}",), resolver=resolver)
    assert (await execute(named, "call", {"url": "x"}))["status_code"] == 200
    assert listener.hosts == [f"upstream.test:{port}"]


@pytest.mark.parametrize(
    "escape",
    [
        "../admin/x",
        "%2e%2e/admin/x",
        "%2E%2E/admin/x",
        ".%2e/admin/x",
        "..%2fadmin/x",
        "..%5cadmin/x",
        "..\\admin/x",
        "/admin/x",
        "//evil.test/admin/x",
        "{url}/v1/../admin/x",
        "{url}/v10/x",
        "{url}/admin/x",
    ],
)
async def test_no_call_leaves_the_base_path(
    listener: Listener, operator: Operator, refusals: Refusals, escape: str
) -> None:
    base = f"{listener.url}/v1/"
    # The operator allows the whole origin: the agent's own base path is what holds.
    agent = operator.agent(base, allowed=[listener.url], private=(endpoint_of(base),))
    with pytest.raises(CommandFailed) as refused:
        await execute(agent, "call", {"url": escape.format(url=listener.url)})
    assert refused.value.code == "destination_not_allowed"
    assert listener.paths == []
    assert refusals == [("api", "outside_agent")]
    await execute(agent, "call", {"url": "a/./b/%2e/c"})
    assert listener.paths == ["/v1/a/b/c"]


async def test_a_call_outside_the_operators_list_is_refused(
    listener: Listener, operator: Operator, refusals: Refusals
) -> None:
    base = f"{listener.url}/v1/"
    agent = operator.agent(base, allowed=[f"{listener.url}/v2/"], private=(endpoint_of(base),))
    with pytest.raises(CommandFailed, match="EGRESS_ALLOWED_URLS"):
        await execute(agent, "call", {"url": "x"})
    assert listener.connections == 0
    assert refusals == [("api", "not_allowed")]


async def test_a_redirect_is_answered_not_followed(listener: Listener, operator: Operator) -> None:
    listener.default = Reply(302, {}, {"Location": f"{listener.url}/v1/elsewhere"})
    base = f"{listener.url}/v1/"
    result = await execute(
        operator.agent(base, private=(endpoint_of(base),)), "call", {"url": "go"}
    )
    assert result["status_code"] == 302
    assert listener.paths == ["/v1/go"]


async def test_an_oversized_body_is_cut_flagged_and_not_parsed(
    listener: Listener, operator: Operator
) -> None:
    listener.default = Reply(body={"items": ["x" * 100] * 10_000})
    base = f"{listener.url}/"
    agent = operator.agent(
        base, private=(endpoint_of(base),), max_body_bytes=4096, mapping={"first": "items.0"}
    )
    result = await execute(agent, "call", {"url": "big"})
    assert result["truncated"] is True
    assert isinstance(result["body"], str)
    assert len(result["body"].encode()) <= 4096
    assert result["mapped"] == {"first": None}


async def test_an_upstream_error_is_an_error_with_the_body(
    listener: Listener, operator: Operator
) -> None:
    listener.default = Reply(404, {"detail": "nope"})
    agent = operator.agent(listener.url, private=(endpoint_of(listener.url),), retries=0)
    with pytest.raises(CommandFailed) as failed:
        await execute(agent, "call", {"url": "/x"})
    assert failed.value.code == "upstream_error"
    assert failed.value.details["body"] == {"detail": "nope"}


async def test_an_unreachable_upstream_is_reported(operator: Operator) -> None:
    with Listener() as gone:
        url = gone.url  # the port is free again once it stops
    agent = operator.agent(url, private=(endpoint_of(url),), retries=1, backoff_s=0)
    with pytest.raises(CommandFailed) as failed:
        await execute(agent, "call", {"url": "/x"})
    assert failed.value.code == "upstream_unreachable"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from recorded_spans()


async def test_each_call_through_the_egress_client_is_a_client_span(
    listener: Listener, operator: Operator, spans: InMemorySpanExporter
) -> None:
    listener.replies.extend([Reply(503, {}), Reply(200, {"ok": True})])
    base = f"{listener.url}/v1/"
    agent = operator.agent(base, private=(endpoint_of(base),), backoff_s=0)
    assert (await execute(agent, "call", {"url": "things", "params": {"token": "s3cret"}}))[
        "status_code"
    ] == 200

    failed, answered = named(spans, "GET")
    port = int(listener.url.rsplit(":", 1)[1])
    for span in (failed, answered):
        assert span.kind == SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes["http.request.method"] == "GET"
        assert span.attributes["url.full"] == f"http://127.0.0.1:{port}/v1/things"
        assert (span.attributes["server.address"], span.attributes["server.port"]) == (
            "127.0.0.1",
            port,
        )
    assert failed.attributes is not None
    assert answered.attributes is not None
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["error.type"] == "503"
    assert failed.status.status_code == StatusCode.ERROR
    assert answered.attributes["http.response.status_code"] == 200
    assert "error.type" not in answered.attributes
    assert not any("s3cret" in str(value) for value in answered.attributes.values())
