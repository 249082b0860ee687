"""A restart of any single service under the default organisation's load keeps every decision
made before it.

One system for the module, as `make run` starts it: the default organisation applied with
`vsm apply`, its workload (process_data and analyze to the workers, calls through the api
agents, every second) and its flaky endpoint, the launcher's clocks. On top of it the
decisions an operator makes: a budget, a meta-system with a carved budget, a grant, S2
lanes with weights and an agent S2 damps, a policy and an identity, S4 rules, an approval
waiting for a person. Then each stateful service in turn is restarted (SIGTERM, and SIGKILL
for queen, whose policy log holds the most) while commands flow, and what the public REST API
shows of those decisions is the same once it is ready again. The gateways hold no state of
their own (they forward to the services), so they have no case here.

Under load some things move on their own (S5's interventions open and close, policies get
new versions): the comparison is that nothing decided before the restart is forgotten, each
kept item as it was, a policy's version read back as it was.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.flaky_endpoint import FlakyEndpoint, Schedule
from scripts.localrun import ORGANISATION_ENV, LocalSystem, Workload, apply_organisation
from tests.support.faults import Report
from tests.support.polling import eventually
from tests.support.probe import open_probe
from tests.support.proposals import s4_proposes
from tests.support.system import launch, shut_down
from tests.support.tokens import OPERATE_TOKEN, gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(900)]

DEFAULT = Path(__file__).resolve().parents[2] / "deploy" / "organisation" / "default.yaml"
CHILD = "root/restarts"
ROOT_BUDGET = {
    "concurrency_slots": 60,
    "llm_tokens_per_min": 40_000,
    "memory_mb": 8192,
    "llm_usd_per_day": 5.0,
}
CARVED = {
    "concurrency_slots": 8,
    "llm_tokens_per_min": 2000,
    "memory_mb": 512,
    "llm_usd_per_day": 1.0,
}
CHILD_OWN = {
    "concurrency_slots": 6,
    "llm_tokens_per_min": 1500,
    "memory_mb": 256,
    "llm_usd_per_day": 0.5,
}
LANES = {"restart-heavy": 6, "restart-light": 3}
S4_RULES = [{"name": "restart-busy", "when": "count(*) over 1m > 100000", "then": "observe"}]
IDENTITY = {
    "purpose": "Process data across restarts.",
    "values": ["Forget nothing decided."],
}
THROTTLE = {"limits": [{"target": "restart-target", "max_rate_per_s": 40}]}
GOVERNANCE = {
    "principles": ["a person approves what S4 proposes"],
    "approvals": [{"policy_type": "throttle", "authors": ["s4"]}],
}
HELD = {"policy_type": "throttle", "limits": [{"target": "restart-target", "max_rate_per_s": 2}]}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FlakyEndpoint]:
    """The default organisation's outside service (500 for 10 s of every 40 s)."""
    running = FlakyEndpoint(Schedule(lead_s=5), port=0).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, endpoint: FlakyEndpoint
) -> Iterator[LocalSystem]:
    """The seven services with `make run`'s clocks and egress allowance, the default
    organisation applied, its workload running for the whole module."""
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("logs"),
        ready_within_s=240,
        **ORGANISATION_ENV,
        EGRESS_ALLOWED_URLS=f'["{endpoint.url}"]',
        EGRESS_ALLOWED_PRIVATE=f'["{endpoint.url.split("/")[2]}"]',
        AUDIT_INTERVAL="3600",
        DAMPING_COOLDOWN_S="900",  # the damping outlives every restart of the module
    )
    workload = None
    try:
        text = DEFAULT.read_text().replace("http://127.0.0.1:8007/", endpoint.url)
        organisation = tmp_path_factory.mktemp("organisation") / "default.yaml"
        organisation.write_text(text)
        assert apply_organisation(organisation, running.url("mcp-gateway"), OPERATE_TOKEN)
        endpoint.schedule.restart()
        workload = Workload(running.url("mcp-gateway"), endpoint.url, OPERATE_TOKEN).start()
        yield running
    finally:
        if workload is not None:
            workload.stop()
        asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
async def gateway(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=30) as client:
        yield client


async def read(gateway: httpx.AsyncClient, path: str, **params: str) -> Any:
    reply = await gateway.get(f"/api/vsm{path}", params=params)
    assert reply.status_code == 200, f"GET {path} {params}: {reply.status_code} {reply.text}"
    return reply.json()


async def agents_of(gateway: httpx.AsyncClient, agent_type: str) -> list[str]:
    listed = await read(gateway, "/agents")
    return sorted(
        a["agent_id"]
        for a in listed
        if a["agent_type"] == agent_type and a.get("vsm_id", "root") == "root"
    )


async def put(gateway: httpx.AsyncClient, path: str, body: Any, **params: str) -> Any:
    reply = await gateway.put(f"/api/vsm{path}", json=body, params=params)
    assert reply.status_code == 200, f"PUT {path}: {reply.status_code} {reply.text}"
    return reply.json()


async def post(gateway: httpx.AsyncClient, path: str, body: Any, *codes: int) -> Any:
    reply = await gateway.post(f"/api/vsm{path}", json=body)
    assert reply.status_code in (codes or (200,)), f"POST {path}: {reply.status_code} {reply.text}"
    return reply.json()


DECIDED: dict[str, Any] = {}


async def decide(gateway: httpx.AsyncClient, amqp_url: str, system: LocalSystem) -> None:
    """The operator's decisions, made once for the module while the workload runs."""
    workers = await eventually(
        lambda: _three_workers(gateway), timeout=120.0, what="the organisation's three workers"
    )
    DECIDED["worker"] = workers[0]
    await put(gateway, "/system/3/budget", ROOT_BUDGET)
    created = await gateway.post(
        "/api/vsm/meta-systems",
        params={"vsm_id": "root"},
        json={"name": CHILD.split("/")[1], "purpose": "survive restarts", "budget": CARVED},
    )
    assert created.status_code == 201, created.text
    await put(gateway, "/system/3/budget", CHILD_OWN, vsm_id=CHILD)
    grant = {
        "agent_id": workers[1],
        "resources": {"concurrency_slots": 5, "memory_mb": 256},
        "priority": 6,
        "reason": "restart test",
    }
    await post(gateway, "/system/3/allocations", grant)
    for lane, weight in LANES.items():
        work = {
            "lane": lane,
            "weight": weight,
            "agent_id": workers[0],
            "command_type": "process_data",
            "data": {"data": {"lane": lane}},
        }
        await post(gateway, "/work", work, 202)
    for slots in (2, 1, 2, 1, 2, 1):  # up and down: the reversals make S2 damp the agent
        wanted = {"agent_id": workers[2], "resources": {"concurrency_slots": slots}, "priority": 2}
        reply = await gateway.post("/api/vsm/system/3/allocations", json=wanted)
        if reply.status_code == 409 and reply.json()["error"] == "damped":
            break
        assert reply.status_code == 200, reply.text
    DECIDED["damped"] = workers[2]
    await put(gateway, "/identity", {"policy": IDENTITY})
    await put(gateway, "/policies/throttle", {"policy": THROTTLE}, vsm_id=CHILD)
    await put(gateway, "/policies/governance", {"policy": GOVERNANCE}, vsm_id=CHILD)
    await put(gateway, "/system/4/rules", {"rules": S4_RULES}, vsm_id=CHILD)

    async def settled() -> dict[str, Any] | None:
        s2 = (await observe(gateway))["s2"]
        served = all(s2["lanes"].get(lane, (0, 0))[1] >= 1 for lane in LANES)
        return s2 if served and workers[2] in s2["damped"] else None

    await eventually(settled, timeout=120.0, what="both lanes served and an agent damped")


async def open_matters(gateway: httpx.AsyncClient, amqp_url: str, system: LocalSystem) -> None:
    """An intervention open and an approval waiting, before every restart: pain an operator
    reports (S5 intervenes on the root), and S4's proposal of a throttle the child's
    governance holds for a person."""
    state = await observe(gateway)
    if not any(a["vsm_id"] == CHILD for a in state["approvals"].values()):
        async with open_probe(amqp_url, system.env["VSM_NAMESPACE"]) as probe:
            await s4_proposes(probe, CHILD, HELD, "S4 would slow the restart target")
    for _ in range(3):
        await post(gateway, "/algedonic/pain", {"intensity": 1.0, "reason": "restart_test"}, 202)

    async def both() -> bool | None:
        now = await observe(gateway)
        waiting = any(a["vsm_id"] == CHILD for a in now["approvals"].values())
        return (
            waiting and any(i["status"] != "resolved" for i in now["interventions"].values())
        ) or None

    await eventually(both, timeout=120.0, what="an intervention open and an approval waiting")


async def _three_workers(gateway: httpx.AsyncClient) -> list[str] | None:
    workers = await agents_of(gateway, "worker")
    return workers if len(workers) >= 3 else None


def s3_decisions(state: dict[str, Any]) -> dict[str, Any]:
    """S3's decisions: budgets, carves, grants, damping (not the audit, not usage)."""
    grants = {a["agent_id"]: (a["resources"], a["priority"]) for a in state.get("allocations", [])}
    return {
        "budget": state.get("budget"),
        "children": state.get("children"),
        "grants": grants,
        "damped": sorted(state.get("damped", [])),
    }


def tree(found: dict[str, Any]) -> dict[str, Any]:
    """The meta-systems as decided (not their viability, a measure)."""
    children = [{k: v for k, v in c.items() if k != "viability"} for c in found["children"]]
    return {**found, "children": children}


async def child_s4(gateway: httpx.AsyncClient) -> bool | None:
    """S4 serves the child again (it reads S5's tree on a schedule after its start)."""
    reply = await gateway.get("/api/vsm/system/4", params={"vsm_id": CHILD})
    return reply.status_code == 200 or None


async def observe(gateway: httpx.AsyncClient) -> dict[str, Any]:
    """What the REST API shows of every decision, in comparable form."""
    s2 = await read(gateway, "/system/2")
    policies: dict[str, Any] = {}
    for vsm_id in ("root", CHILD):
        listed = await read(gateway, "/policies", vsm_id=vsm_id)
        for summary in listed["policies"]:
            kind = summary["policy_type"]
            policies[f"{vsm_id}:{kind}"] = await read(gateway, f"/policies/{kind}", vsm_id=vsm_id)
    interventions = {}
    for vsm_id in ("root", CHILD):
        for i in (await read(gateway, "/system/5", vsm_id=vsm_id))["interventions"]:
            interventions[i["intervention_id"]] = i
    agents = {
        a["agent_id"]: (a["name"], a["agent_type"], a["vsm_id"], a["config"])
        for a in await read(gateway, "/agents")
    }
    return {
        "s3": {
            v: s3_decisions(await read(gateway, "/system/3", vsm_id=v)) for v in ("root", CHILD)
        },
        "s2": {
            "lanes": {lane["lane"]: (lane["weight"], lane["dispatched"]) for lane in s2["lanes"]},
            "damped": s2["damped"],
        },
        "policies": policies,
        "identity": await read(gateway, "/identity"),
        "meta_systems": tree(await read(gateway, "/meta-systems")),
        "agents": agents,
        "s4_rules": (await read(gateway, "/system/4", vsm_id=CHILD))["rules"],
        "interventions": interventions,
        "approvals": {a["approval_id"]: a for a in await read(gateway, "/approvals")},
    }


def open_ones(interventions: dict[str, Any]) -> dict[str, Any]:
    return {k: i for k, i in interventions.items() if i["status"] != "resolved"}


def forgotten(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Whatever `before` held that `after` lost or changed; empty when nothing was forgotten."""
    lost: dict[str, Any] = {}
    for key in ("s3", "identity", "meta_systems", "agents", "s4_rules"):
        if before[key] != after[key]:
            lost[key] = {"before": before[key], "after": after[key]}
    lanes = {k: v[0] for k, v in before["s2"]["lanes"].items() if k in LANES}
    lanes_after = {k: v[0] for k, v in after["s2"]["lanes"].items() if k in LANES}
    if lanes != lanes_after or before["s2"]["damped"] != after["s2"]["damped"]:
        lost["s2"] = {"before": before["s2"], "after": after["s2"]}
    for name, record in before["policies"].items():
        if after["policies"].get(name) != record:
            lost[f"policy {name}"] = {"before": record, "after": after["policies"].get(name)}
    kept = {"interventions": open_ones(before["interventions"]), "approvals": before["approvals"]}
    for key, items in kept.items():
        missing = sorted(set(items) - set(after[key]))
        if missing:
            lost[key] = {"missing": missing, "before": before[key], "after": after[key]}
    return lost


async def as_of(gateway: httpx.AsyncClient, records: dict[str, Any]) -> dict[str, Any]:
    """Each policy read back at the version it had (S5 may have made newer ones since)."""
    found: dict[str, Any] = {}
    for name, record in records.items():
        vsm_id, kind = name.rsplit(":", 1)
        reply = await gateway.get(
            f"/api/vsm/policies/{kind}/{record['version']}", params={"vsm_id": vsm_id}
        )
        found[name] = reply.json() if reply.status_code == 200 else reply.status_code
    return found


async def answered(gateway: httpx.AsyncClient) -> bool | None:
    """A command through the REST API reaches a worker and its result comes back."""
    command = {"type": "process_data", "data": {"data": {"after": "restart"}}, "timeout_s": 10}
    with_ok = await gateway.post(f"/api/vsm/agents/{DECIDED['worker']}/command", json=command)
    return with_ok.status_code == 200 or None


CASES = [
    ("queen", signal.SIGTERM),
    ("queen", signal.SIGKILL),
    ("control", signal.SIGTERM),
    ("coordinator", signal.SIGTERM),
    ("operations", signal.SIGTERM),
    ("intelligence", signal.SIGTERM),
]


@pytest.mark.parametrize(("service", "sig"), CASES, ids=[f"{s}-{g.name}" for s, g in CASES])
async def test_a_restart_under_load_forgets_nothing_decided(
    amqp_url: str,
    system: LocalSystem,
    gateway: httpx.AsyncClient,
    report: Report,
    service: str,
    sig: signal.Signals,
) -> None:
    if not DECIDED:
        await decide(gateway, amqp_url, system)
    await open_matters(gateway, amqp_url, system)
    await eventually(lambda: answered(gateway), timeout=60.0, what="commands answered")
    before = await observe(gateway)
    process = system.processes[service]
    system.kill(service, sig)
    await asyncio.to_thread(process.wait, 60)
    system.start([service])
    await asyncio.to_thread(system.wait_ready, 240, [service])
    await eventually(lambda: answered(gateway), timeout=120.0, what="commands answered again")
    await eventually(lambda: child_s4(gateway), timeout=120.0, what="S4 serving the child")
    after = await observe(gateway)
    after["policies"] = await as_of(gateway, before["policies"])
    lost = forgotten(before, after)
    report(
        f"restart_{service}_{sig.name}",
        policies=len(before["policies"]),
        agents=len(before["agents"]),
        open_interventions=len(open_ones(before["interventions"])),
        approvals=len(before["approvals"]),
        forgotten=",".join(sorted(lost)) or "nothing",
    )
    assert not lost, lost
