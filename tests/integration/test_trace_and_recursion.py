"""S5's causal trail and its meta-system tree, on the running system.

The trail: a pain signal opens an intervention, the intervention applies a policy, and
`GET /api/vsm/trace/<id>` rebuilds that chain from any of its ids. Recursion: a child
viable system is spawned with a budget carved by S3, policy flows down into it, its
viability flows up, quotas and bad ids are refused with the state unchanged, and retiring
it gives its budget back.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.probe import Probe
from vsm.contract import topology

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    return {"ALGEDONIC_HALF_LIFE_S": "600", "META_REPORT_INTERVAL_S": "0.5"}


async def test_a_pain_signal_and_what_it_caused_are_one_chain(
    gateway: httpx.AsyncClient, system_probe: Probe
) -> None:
    opened = await system_probe.bind_queue("probe.opened", topology.INTERVENTIONS.name)
    signal = await gateway.post(
        "/api/vsm/algedonic/pain", json={"intensity": 0.95, "reason": "error_burst"}
    )
    assert signal.status_code == 202, signal.text
    signal_id = signal.json()["id"]
    message = await system_probe.get(opened, timeout=20)
    intervention = json.loads(message.body)
    assert intervention["causationid"] == signal_id  # the CloudEvents name on the wire

    async def chain() -> dict[str, Any] | None:
        reply = await gateway.get(f"/api/vsm/trace/{signal_id}")
        body = reply.json()
        types = [step["type"] for step in body.get("chain", [])]
        return body if "vsm.s5.policy.changed.v1" in types else None

    trace = await eventually(chain)
    steps = trace["chain"]
    assert steps[0]["id"] == signal_id
    assert steps[0]["depth"] == 0
    assert steps[1]["id"] == intervention["id"]
    policy = next(s for s in steps if s["type"] == "vsm.s5.policy.changed.v1")
    assert policy["causation_id"] == intervention["id"]
    assert "pain 0.95" in trace["text"].splitlines()[0]
    same = (await gateway.get(f"/api/vsm/trace/{policy['id']}")).json()
    assert [s["id"] for s in same["chain"]][:3] == [s["id"] for s in steps][:3]


async def test_an_unknown_message_id_is_a_clear_404(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.get("/api/vsm/trace/no-such-message")
    assert reply.status_code == 404
    assert reply.json()["error"] == "message_not_found"


BUDGET = {
    "concurrency_slots": 4,
    "llm_tokens_per_min": 1000,
    "memory_mb": 256,
    "llm_usd_per_day": None,
}


async def spawn(
    gateway: httpx.AsyncClient, name: str, parent: str = "root", **extra: Any
) -> httpx.Response:
    body = {"name": name, "purpose": f"{name} things", "budget": BUDGET, **extra}
    return await gateway.post("/api/vsm/meta-systems", params={"vsm_id": parent}, json=body)


async def test_a_child_gets_its_budget_policy_flows_down_and_viability_up(
    gateway: httpx.AsyncClient,
) -> None:
    before = (await gateway.get("/api/vsm/system/3")).json()
    created = await spawn(gateway, "logistics")
    assert created.status_code == 201, created.text
    child = created.json()
    assert (child["vsm_id"], child["parent"], child["depth"]) == ("root/logistics", "root", 1)
    carved = (await gateway.get("/api/vsm/system/3")).json()
    assert carved["children"]["root/logistics"] == BUDGET
    assert carved["free"]["concurrency_slots"] == before["free"]["concurrency_slots"] - 4
    identity = await gateway.get("/api/vsm/identity", params={"vsm_id": "root/logistics"})
    assert identity.json()["policy"]["purpose"] == "logistics things"

    stored = await gateway.put(
        "/api/vsm/policies/governance",
        json={"policy": {"principles": ["keep the loop closed"]}, "reason": "test"},
    )
    assert stored.status_code == 200, stored.text

    async def inherited() -> dict[str, Any] | None:
        reply = await gateway.get(
            "/api/vsm/policies/governance", params={"vsm_id": "root/logistics"}
        )
        return reply.json() if reply.status_code == 200 else None

    record = await eventually(inherited)
    assert record["source"] == "parent"
    assert record["policy"]["principles"] == ["keep the loop closed"]

    async def reported() -> list[dict[str, Any]] | None:
        tree = (await gateway.get("/api/vsm/meta-systems")).json()
        return [c for c in tree["children"] if c["vsm_id"] == "root/logistics"] or None

    assert (await eventually(reported))[0]["budget"] == BUDGET

    retired = await gateway.delete("/api/vsm/meta-systems", params={"vsm_id": "root/logistics"})
    assert retired.status_code == 200, retired.text
    after = (await gateway.get("/api/vsm/system/3")).json()
    assert "root/logistics" not in after["children"]
    assert after["free"] == before["free"]


@pytest.mark.parametrize(
    ("parent", "name", "extra", "status", "code"),
    [
        ("root/nowhere", "x", {}, 404, "meta_system_not_found"),
        ("root", "Bad_Name", {}, 422, None),
        ("root//x", "y", {}, 422, None),
        ("root", "huge", {"budget": {"concurrency_slots": 99_999}}, 422, "over_budget"),
        ("root", "neg", {"budget": {"memory_mb": -1}}, 422, None),
    ],
)
async def test_bad_spawns_are_refused_and_change_nothing(
    gateway: httpx.AsyncClient,
    parent: str,
    name: str,
    extra: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    before = (await gateway.get("/api/vsm/meta-systems")).json()
    budget_before = (await gateway.get("/api/vsm/system/3")).json()["free"]
    reply = await spawn(gateway, name, parent, **extra)
    assert reply.status_code == status, reply.text
    if code is not None:
        assert reply.json()["error"] == code
    assert (await gateway.get("/api/vsm/meta-systems")).json() == before
    assert (await gateway.get("/api/vsm/system/3")).json()["free"] == budget_before


async def test_quotas_depth_children_and_cycles(gateway: httpx.AsyncClient) -> None:
    parent, slots = "root", 20
    for name in ("d1", "d2", "d3", "d4", "d5"):
        budget = {"budget": {"concurrency_slots": slots}}
        reply = await spawn(gateway, name, parent, **budget)
        assert reply.status_code == 201, reply.text
        parent, slots = reply.json()["vsm_id"], slots - 2
    too_deep = await spawn(gateway, "d6", parent, budget={"concurrency_slots": 1})
    assert (too_deep.status_code, too_deep.json()["error"]) == (409, "quota_exceeded")
    cyclic = await spawn(gateway, "d1", "root/d1/d2", budget={"concurrency_slots": 1})
    assert (cyclic.status_code, cyclic.json()["error"]) == (422, "cyclic_vsm_id")
    has_children = await gateway.delete("/api/vsm/meta-systems", params={"vsm_id": "root/d1"})
    assert (has_children.status_code, has_children.json()["error"]) == (409, "has_children")
    # root/d1/d2 holds 18 slots, 16 of them carved for d3: room for the ten children's 1 each
    # only after d3's branch is retired.
    for vsm_id in ("root/d1/d2/d3/d4/d5", "root/d1/d2/d3/d4", "root/d1/d2/d3"):
        retired = await gateway.delete("/api/vsm/meta-systems", params={"vsm_id": vsm_id})
        assert retired.status_code == 200, retired.text
    for i in range(10):
        child = await spawn(gateway, f"c{i}", "root/d1/d2", budget={"concurrency_slots": 1})
        assert child.status_code == 201, child.text
    eleventh = await spawn(gateway, "c10", "root/d1/d2", budget={"concurrency_slots": 1})
    assert (eleventh.status_code, eleventh.json()["error"]) == (409, "quota_exceeded")
