"""S3 control on the running system: budgets, allocations, policy, damping and S3* audits.

Each test works in a viable system of its own (`root/s3-...`), so budgets and agents of one
test never meet another's. Figures that matter are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest

from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology
from vsm.contract.control import (
    ALLOCATION_REQUEST_KEY,
    ALLOCATIONS_KEY,
    AUDIT_REPORT_KEY,
    HEADROOM_KEY,
    AllocationChanged,
    AllocationRequest,
    AuditFindings,
    CarveBudget,
    ReleaseBudget,
    ResourceHeadroom,
    Resources,
    allocation_key,
)
from vsm.contract.coordination import Damping, damping_key
from vsm.contract.envelope import Envelope
from vsm.contract.operations import AgentInfo, AgentSpawned, earlier_command_queue
from vsm.contract.policy import PolicyChanged
from vsm.kit.bus import AnyEnvelope, RequestFailed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SMALL = {"concurrency_slots": 10, "llm_tokens_per_min": 1000, "memory_mb": 1024}


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return {"HEADROOM_INTERVAL": "0.5", "PERFORMANCE_INTERVAL": "1", "AUDIT_INTERVAL": "3"}


async def spawn(gateway: httpx.AsyncClient, vsm_id: str, slots: int) -> str:
    reply = await gateway.post(
        "/api/vsm/agents",
        params={"vsm_id": vsm_id},
        json={"type": "worker", "config": {"allocation": slots}},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["agent_id"])


async def state(gateway: httpx.AsyncClient, vsm_id: str) -> dict[str, Any]:
    reply = await gateway.get("/api/vsm/system/3", params={"vsm_id": vsm_id})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def held(s3: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["agent_id"]: a for a in s3["allocations"]}


async def known(gateway: httpx.AsyncClient, vsm_id: str, *agent_ids: str) -> dict[str, Any]:
    """S3's state once it has heard of every one of `agent_ids` (from S1's registry)."""

    async def heard() -> dict[str, Any] | None:
        s3 = await state(gateway, vsm_id)
        return s3 if set(agent_ids) <= set(held(s3)) else None

    return await eventually(heard, what=f"S3 knowing {agent_ids} in {vsm_id}")


async def allocate(gateway: httpx.AsyncClient, agent_id: str, **body: Any) -> httpx.Response:
    return await gateway.post("/api/vsm/system/3/allocations", json={"agent_id": agent_id, **body})


async def changes(
    probe: Probe, queue: str, count: int, timeout: float = 20
) -> list[Envelope[AllocationChanged]]:
    seen = []
    for _ in range(count):
        envelope = AnyEnvelope.validate_json((await probe.get(queue, timeout=timeout)).body)
        assert isinstance(envelope.data, AllocationChanged)
        seen.append(envelope)
    return seen  # type: ignore[return-value]


async def throttle(
    gateway: httpx.AsyncClient, vsm_id: str, *limits: dict[str, Any], reason: str | None = None
) -> dict[str, Any]:
    """A new version of `vsm_id`'s throttle policy, limiting `limits`: the stored version."""
    body: dict[str, Any] = {"policy": {"limits": list(limits)}}
    if reason is not None:
        body["reason"] = reason
    reply = await gateway.put("/api/vsm/policies/throttle", params={"vsm_id": vsm_id}, json=body)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def without_audit(s3: dict[str, Any]) -> dict[str, Any]:
    """S3's state less the last audit (sporadic audits may replace it at any time)."""
    return {key: value for key, value in s3.items() if key != "last_audit"}


async def test_a_request_within_the_budget_is_granted_announced_and_honoured(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-grant"
    agent = await spawn(gateway, vsm, 2)
    await known(gateway, vsm, agent)
    requests = await system_probe.bind_queue(
        "test.requests", topology.CONTROL.name, ALLOCATION_REQUEST_KEY
    )
    watched = await system_probe.bind_queue(
        "test.allocations", topology.CONTROL.name, allocation_key(agent)
    )

    reply = await allocate(
        gateway, agent, resources={"concurrency_slots": 6, "memory_mb": 128}, priority=5
    )

    assert reply.status_code == 200, reply.text
    grant = reply.json()
    assert (grant["outcome"], grant["granted"]["concurrency_slots"]) == ("granted", 6)
    request = AnyEnvelope.validate_json((await system_probe.get(requests)).body)
    assert isinstance(request.data, AllocationRequest)  # it travelled on vsm.control
    [changed] = await changes(system_probe, watched, 1)
    assert changed.data.resources.concurrency_slots == 6
    assert (changed.vsm_id, changed.source) == (vsm, "vsm/control")
    assert changed.causation_id == request.id
    after = await state(gateway, vsm)
    assert held(after)[agent]["resources"]["concurrency_slots"] == 6
    assert held(after)[agent]["priority"] == 5

    async def honoured() -> dict[str, Any] | None:
        audit = await gateway.post(
            "/api/vsm/audit/bypass", json={"agent_id": agent, "audit_type": "resource_audit"}
        )
        report = dict(audit.json()["report"])
        return report if report.get("allocation") == 6 else None

    report = await eventually(honoured, what="the agent working with 6 slots")
    print(
        f"\ngrant: {agent} 2 -> {grant['granted']['concurrency_slots']} slots; "
        f"{vsm} allocated {after['allocated']}, headroom {after['headroom']}; "
        f"the agent's own audit says allocation={report['allocation']}"
    )


async def test_a_short_budget_preempts_a_lower_priority_agent_down_to_its_fair_share(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-preempt"
    low = await spawn(gateway, vsm, 4)
    high = await spawn(gateway, vsm, 4)
    await known(gateway, vsm, low, high)
    budget = await gateway.put("/api/vsm/system/3/budget", params={"vsm_id": vsm}, json=SMALL)
    assert budget.status_code == 200, budget.text
    assert budget.json()["free"]["concurrency_slots"] == 2
    watched = await system_probe.bind_queue(
        "test.allocations", topology.CONTROL.name, ALLOCATIONS_KEY
    )

    first = await allocate(
        gateway, low, resources={"concurrency_slots": 6, "memory_mb": 128}, priority=2
    )
    second = await allocate(
        gateway, high, resources={"concurrency_slots": 9, "memory_mb": 128}, priority=7
    )

    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "granted"
    assert second.status_code == 200, second.text
    grant = second.json()
    assert grant["outcome"] == "partial"
    assert grant["granted"]["concurrency_slots"] == 5  # 4 held + 1 from low; fair share is 5
    assert [(p["agent_id"], p["released"]["concurrency_slots"]) for p in grant["preempted"]] == [
        (low, 1)
    ]
    seen = [e for e in await changes(system_probe, watched, 3) if e.data.agent_id in (low, high)]
    last = {e.data.agent_id: e.data for e in seen}
    assert last[high].resources.concurrency_slots == 5
    assert last[low].resources.concurrency_slots == 5
    assert last[low].reason.startswith("preempted")
    after = await state(gateway, vsm)
    figures = [(e.data.agent_id, e.data.resources.concurrency_slots) for e in seen]
    assert after["free"]["concurrency_slots"] == 0
    assert after["headroom"] == 0.0
    print(
        f"\npreemption: budget 10 slots; low (priority 2) 4 -> 6 -> "
        f"{held(after)[low]['resources']['concurrency_slots']}, high (priority 7) asked 9, got "
        f"{grant['granted']['concurrency_slots']} ({grant['outcome']}); "
        f"AllocationChanged seen: {figures}"
    )


async def refusal_subject(gateway: httpx.AsyncClient, vsm: str) -> str:
    """One agent in a system with a 10-slot budget, made by the first case that needs it."""
    agents = held(await state(gateway, vsm))
    if agents:
        return next(iter(agents))
    agent = await spawn(gateway, vsm, 2)
    await known(gateway, vsm, agent)
    reply = await gateway.put("/api/vsm/system/3/budget", params={"vsm_id": vsm}, json=SMALL)
    assert reply.status_code == 200, reply.text
    return agent


@pytest.mark.parametrize(
    ("route", "body", "status", "error"),
    [
        ("allocate", {"resources": {"concurrency_slots": 11}}, 422, "over_budget"),
        ("allocate", {"resources": {"concurrency_slots": -1}}, 422, "invalid_request"),
        ("allocate", {"resources": {"concurrency_slots": 10**9}}, 422, "invalid_request"),
        ("allocate", {"resources": {"memory_mb": 10**12}}, 422, "invalid_request"),
        ("allocate", {"resources": {"slots": 1}}, 422, "invalid_request"),
        ("unknown", {"resources": {"concurrency_slots": 1}}, 404, "unknown_agent"),
        ("audit", {}, 404, "unknown_agent"),
        ("budget", {"concurrency_slots": -5}, 422, "invalid_request"),
        ("budget", {"llm_tokens_per_min": 10**12}, 422, "invalid_request"),
        ("budget", {"llm_usd_per_day": -0.5}, 422, "invalid_request"),
        ("budget", {"llm_usd_per_day": 10**7}, 422, "invalid_request"),
        ("budget", {"llm_tokens_per_min": 100}, 422, "invalid_budget"),  # no slot: below 1
    ],
)
async def test_bad_requests_get_a_clear_error_and_change_nothing(
    gateway: httpx.AsyncClient, route: str, body: dict[str, Any], status: int, error: str
) -> None:
    vsm = "root/s3-refuse"
    agent = await refusal_subject(gateway, vsm)
    before = without_audit(await state(gateway, vsm))

    if route == "allocate":
        reply = await allocate(gateway, agent, **body)
    elif route == "unknown":
        reply = await allocate(gateway, "no-such-agent", **body)
    elif route == "audit":
        reply = await gateway.post(
            "/api/vsm/system/3/audit",
            params={"vsm_id": vsm},
            json={"agent_ids": [agent, "no-such-agent"], "timeout_s": 1},
        )
    else:
        reply = await gateway.put("/api/vsm/system/3/budget", params={"vsm_id": vsm}, json=body)

    assert reply.status_code == status, reply.text
    answer = reply.json()
    assert answer["error"] == error
    if error == "invalid_request":
        named = [f["field"] for f in answer["fields"]]
        assert any(name and name.split(".")[-1] in json.dumps(body) for name in named), named
    if error == "unknown_agent":
        assert "no-such-agent" in answer["message"]
    if error == "invalid_budget":
        assert answer["details"]["field"] == "budget.concurrency_slots", answer
    assert without_audit(await state(gateway, vsm)) == before
    message = str(answer.get("message", ""))[:90]
    if error == "invalid_request":
        message = f"fields {[f['field'] for f in answer['fields']]}"
    print(f"\n{route} {json.dumps(body)} -> {reply.status_code} {answer['error']}: {message}")


async def test_carving_beyond_the_free_budget_is_refused_and_release_gives_it_back(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    parent = "root/s3-carve"
    agent = await spawn(gateway, parent, 4)
    await known(gateway, parent, agent)
    reply = await gateway.put("/api/vsm/system/3/budget", params={"vsm_id": parent}, json=SMALL)
    assert reply.status_code == 200, reply.text
    before = without_audit(await state(gateway, parent))
    assert before["free"]["concurrency_slots"] == 6

    async def ask(body: CarveBudget | ReleaseBudget) -> str:
        operation = "budget.carve" if isinstance(body, CarveBudget) else "budget.release"
        with pytest.raises(RequestFailed) as refused:
            await system_probe.bus.request("control", operation, body, vsm_id=parent)
        return refused.value.reply.code

    too_big = CarveBudget(child=f"{parent}/big", budget=Resources(concurrency_slots=7))
    assert await ask(too_big) == "over_budget"
    assert without_audit(await state(gateway, parent)) == before

    fits = CarveBudget(child=f"{parent}/fits", budget=Resources(concurrency_slots=6))
    carved = await system_probe.bus.request("control", "budget.carve", fits, vsm_id=parent)
    assert carved.data.children == {f"{parent}/fits": Resources(concurrency_slots=6)}  # type: ignore[attr-defined]
    one_more = CarveBudget(child=f"{parent}/more", budget=Resources(concurrency_slots=1))
    assert await ask(one_more) == "over_budget"
    child = await state(gateway, f"{parent}/fits")
    assert child["budget"]["concurrency_slots"] == 6

    await system_probe.bus.request(
        "control", "budget.release", ReleaseBudget(child=f"{parent}/fits"), vsm_id=parent
    )
    assert without_audit(await state(gateway, parent)) == before
    assert await ask(ReleaseBudget(child=f"{parent}/fits")) == "child_not_found"
    print(
        f"\ncarve: {parent} free {before['free']['concurrency_slots']} slots; 7 refused "
        f"(over_budget), 6 carved, 1 more refused, released: free back to "
        f"{before['free']['concurrency_slots']}"
    )


async def test_a_throttle_policy_limits_the_agent_and_a_later_version_restores_it(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-throttle"
    agent = await spawn(gateway, vsm, 4)
    bystander = await spawn(gateway, vsm, 3)
    await known(gateway, vsm, agent, bystander)
    watched = await system_probe.bind_queue(
        "test.allocations", topology.CONTROL.name, allocation_key(agent)
    )
    policies = await system_probe.bind_queue("test.policies", topology.POLICY.name)
    limit = {"target": agent, "max_rate_per_s": 2, "max_concurrency": 1, "reason": "failing unit"}

    version = (await throttle(gateway, vsm, limit, reason="test"))["version"]

    [throttled] = await changes(system_probe, watched, 1)
    assert throttled.data.max_rate_per_s == 2.0
    assert throttled.data.resources.concurrency_slots == 1
    assert throttled.data.policy == f"throttle v{version}"
    assert "failing unit" in throttled.data.reason

    def the_policy(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
        body = AnyEnvelope.validate_json(message.body).data
        return isinstance(body, PolicyChanged) and body.record.vsm_id == vsm

    policy = AnyEnvelope.validate_json((await system_probe.get_matching(policies, the_policy)).body)
    assert throttled.causation_id == policy.id
    s3 = await state(gateway, vsm)
    assert held(s3)[agent]["max_rate_per_s"] == 2.0
    assert held(s3)[bystander]["max_rate_per_s"] is None

    v2 = await throttle(gateway, vsm, {"target": "someone-else", "max_rate_per_s": 5})
    [restored] = await changes(system_probe, watched, 1)
    assert restored.data.max_rate_per_s is None
    assert restored.data.resources.concurrency_slots == 4
    assert restored.data.policy == f"throttle v{v2['version']}"
    print(
        f"\nthrottle v{version}: {agent} -> {throttled.data.max_rate_per_s}/s, "
        f"{throttled.data.resources.concurrency_slots} slot ({throttled.data.reason!r}); "
        f"v{v2['version']} restores -> rate {restored.data.max_rate_per_s}, "
        f"{restored.data.resources.concurrency_slots} slots"
    )


async def test_an_audit_of_real_agents_answers_with_their_reports_and_findings(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-audit"
    roomy = await spawn(gateway, vsm, 4)
    single = await spawn(gateway, vsm, 1)
    await known(gateway, vsm, roomy, single)
    reports = await system_probe.bind_queue("test.audits", topology.CONTROL.name, AUDIT_REPORT_KEY)

    async def idle_found() -> dict[str, Any] | None:
        reply = await gateway.post(
            "/api/vsm/system/3/audit", params={"vsm_id": vsm}, json={"timeout_s": 5}
        )
        assert reply.status_code == 200, reply.text
        findings = reply.json()
        codes = {(f["agent_id"], f["code"]) for f in findings["findings"]}
        return findings if (roomy, "allocated_but_idle") in codes else None

    findings = await eventually(idle_found, timeout=30, interval=1, what="an idle finding")

    assert {a["agent_id"]: a["outcome"] for a in findings["agents"]} == {
        roomy: "answered",
        single: "answered",
    }
    assert all("allocation" in a["report"] for a in findings["agents"])
    assert f"reduce {roomy} to 1 slot" in findings["recommendations"]
    assert (single, "allocated_but_idle") not in {
        (f["agent_id"], f["code"]) for f in findings["findings"]
    }

    def requested(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
        body = AnyEnvelope.validate_json(message.body).data
        return isinstance(body, AuditFindings) and body.audit_id == findings["audit_id"]

    published = AnyEnvelope.validate_json(
        (await system_probe.get_matching(reports, requested)).body
    )
    assert published.data.trigger == "requested"  # type: ignore[attr-defined]
    assert (await state(gateway, vsm))["last_audit"] is not None
    answers = [(a["agent_id"], a["outcome"], a["report"]["allocation"]) for a in findings["agents"]]
    print(
        f"\naudit: {answers}"
        f"; findings {[(f['agent_id'], f['code']) for f in findings['findings']]}"
        f"; recommendations {findings['recommendations']}"
    )


async def test_an_agent_that_nobody_serves_is_reported_silent(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-silent"
    ghost = f"ghost-{secrets.token_hex(4)}"
    await system_probe.bus.declare(earlier_command_queue(ghost))  # a queue, and no consumer on it
    info = AgentInfo(
        agent_id=ghost,
        agent_type="worker",
        vsm_id=vsm,
        allocation=2,
        max_allocation=4,
        spawned_at=datetime.now(UTC),
    )
    event = system_probe.bus.envelope(AgentSpawned(agent=info))
    await system_probe.channel.default_exchange.publish(
        aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            message_id=event.id,
            type=event.type,
        ),
        routing_key=system_probe.namespace.name(topology.SYSTEM3_CONTROL.name),
    )
    await known(gateway, vsm, ghost)

    reply = await gateway.post(
        "/api/vsm/system/3/audit",
        params={"vsm_id": vsm},
        json={"agent_ids": [ghost], "audit_type": "state_dump", "timeout_s": 1},
    )

    assert reply.status_code == 200, reply.text
    findings = reply.json()
    assert [(a["agent_id"], a["outcome"]) for a in findings["agents"]] == [(ghost, "timeout")]
    assert [(f["agent_id"], f["code"]) for f in findings["findings"]] == [(ghost, "silent")]
    assert ghost in findings["recommendations"][0]
    print(f"\nsilent: {findings['findings'][0]['detail']} -> {findings['recommendations'][0]!r}")


async def test_a_damped_agents_request_is_refused_until_the_cool_down_ends(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-damped"
    agent = await spawn(gateway, vsm, 2)
    await known(gateway, vsm, agent)
    until = datetime.now(UTC) + timedelta(seconds=60)
    damping = Damping(subject=agent, until=until, reason="flapping allocation")
    await system_probe.bus.publish(
        topology.COORDINATION, damping, routing_key=damping_key(agent), vsm_id=vsm
    )

    async def damped() -> dict[str, Any] | None:
        s3 = await state(gateway, vsm)
        return s3 if agent in s3["damped"] else None

    before = without_audit(await eventually(damped, what="S3 obeying the damping"))
    reply = await allocate(gateway, agent, resources={"concurrency_slots": 3})

    assert reply.status_code == 409, reply.text
    assert reply.json()["error"] == "damped"
    assert agent in reply.json()["message"]
    assert datetime.fromisoformat(reply.json()["details"]["until"]) == until
    assert without_audit(await state(gateway, vsm)) == before
    print(
        f"\ndamped: {reply.status_code} {reply.json()['message']}; damped until {before['damped']}"
    )


async def test_headroom_and_sporadic_audits_are_published(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    vsm = "root/s3-sporadic"
    agent = await spawn(gateway, vsm, 2)
    await known(gateway, vsm, agent)
    headrooms = await system_probe.bind_queue("test.headroom", topology.CONTROL.name, HEADROOM_KEY)
    audits = await system_probe.bind_queue("test.audits", topology.CONTROL.name, AUDIT_REPORT_KEY)

    def of(vsm_id: str) -> Any:
        def matches(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
            return AnyEnvelope.validate_json(message.body).vsm_id == vsm_id

        return matches

    reading = AnyEnvelope.validate_json((await system_probe.get_matching(headrooms, of(vsm))).body)
    assert isinstance(reading.data, ResourceHeadroom)
    assert reading.data.allocated.concurrency_slots == 2
    assert 0 < reading.data.headroom < 1

    def scheduled(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
        body = AnyEnvelope.validate_json(message.body).data
        return isinstance(body, AuditFindings) and body.trigger == "scheduled"

    sporadic = AnyEnvelope.validate_json(
        (await system_probe.get_matching(audits, scheduled, timeout=30)).body
    ).data
    assert isinstance(sporadic, AuditFindings)
    assert 1 <= len(sporadic.agents) <= 3
    print(
        f"\nheadroom of {vsm}: {reading.data.headroom} (allocated "
        f"{reading.data.allocated.concurrency_slots}/{reading.data.budget.concurrency_slots} "
        f"slots); a sporadic audit of {[a.agent_id for a in sporadic.agents]}: "
        f"{[(f.agent_id, f.code) for f in sporadic.findings]}"
    )
