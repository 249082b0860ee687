"""Each page of the console: the topics that make it stale, the questions it asks the
systems, and the context its template lays out.

Answers are shared for `FRESH_S` by every viewer of this replica, so twenty open consoles
ask the systems what one would. A system that does not answer leaves its part of the page
empty with a note; the rest is shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from vsm.contract.approvals import ApprovalList, ApprovalQuery
from vsm.contract.control import System3Query, System3State
from vsm.contract.coordination import System2Query, System2State
from vsm.contract.health import StatusQuery, SystemStatus
from vsm.contract.intelligence import System4Status, System4StatusQuery
from vsm.contract.message import Message
from vsm.contract.operations import (
    AgentDescription,
    AgentList,
    AgentTypes,
    DescribeAgentTypes,
    GetAgent,
    ListAgents,
)
from vsm.contract.policy import (
    IdentityQuery,
    PolicyDiff,
    PolicyDiffQuery,
    PolicyList,
    PolicyListQuery,
    PolicyQuery,
    PolicyReply,
)
from vsm.contract.recursion import MetaSystemQuery, MetaSystemTree
from vsm.contract.system5 import System5Query, System5State, Trace, TraceQuery
from vsm.kit.bus import Bus, RequestFailed, UnexpectedReply
from vsm.kit.dead_letters import DeadLetters, NoSuchDeadLetter
from vsm.kit.rpc import RequestTimeout
from vsm.mcp_gateway.console import views
from vsm.mcp_gateway.console.live import Hub
from vsm.mcp_gateway.rest.dead_letters import QUEUES, DeadLetterQueue, QueueCount, view
from vsm.mcp_gateway.rest.operators import alerts_of

FRESH_S = 0.4
WHOLE = "_whole"
"""Set in a page's parameters when the page itself is rendered, not its live part."""
ReplyT = TypeVar("ReplyT", bound=Message)
Params = dict[str, str]


class Answers:
    """The systems' answers, each shared for `FRESH_S` between the viewers of this replica."""

    def __init__(self, bus: Bus, hub: Hub, dead_letters: DeadLetters) -> None:
        self.bus = bus
        self.hub = hub
        self.dead_letters = dead_letters
        self._answers: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._pending: dict[tuple[Any, ...], asyncio.Future[Any]] = {}

    async def shared(self, key: tuple[Any, ...], make: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        known = self._answers.get(key)
        if known is not None and now - known[0] < FRESH_S:
            return known[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await make()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # read, so an unawaited failure is not reported as lost
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(answer)
        self._answers[key] = (time.monotonic(), answer)
        if len(self._answers) > 512:
            self._answers.clear()
        return answer


class Systems:
    """What one rendering of a page asks, and which systems did not answer it."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.bus = answers.bus
        self.hub = answers.hub
        self.dead_letters = answers.dead_letters
        self.missing: list[str] = []

    async def ask(
        self,
        service: str,
        operation: str,
        body: Message,
        expected: type[ReplyT],
        vsm_id: str | None = None,
    ) -> ReplyT | None:
        """The answer, or None (noted in `missing`) when the system refuses or is silent."""
        key = (service, operation, vsm_id, body.model_dump_json())
        try:
            reply: ReplyT = await self.answers.shared(key, lambda: self.bus.query(
                service, operation, body, expected, vsm_id=vsm_id
            ))  # fmt: skip
        except (RequestTimeout, RequestFailed, UnexpectedReply) as error:
            self.missing.append(f"{service} {operation}: {error}")
            return None
        return reply

    async def agents(self) -> list[Any]:
        reply = await self.ask("operations", "list", ListAgents(), AgentList)
        return reply.agents if reply else []

    async def page_of_agents(self, agent_type: str, number: int) -> tuple[list[Any], int]:
        """One page of the running agents (of one type): only what the page shows is sent."""
        start = (max(1, number) - 1) * views.PER_PAGE
        ask = ListAgents(agent_type=agent_type or None, offset=start, limit=views.PER_PAGE)
        reply = await self.ask("operations", "list", ask, AgentList)
        if reply is None:
            return [], 0
        return reply.agents, reply.total if reply.total is not None else len(reply.agents)


@dataclass(frozen=True)
class PageSpec:
    title: str
    template: str
    topics: tuple[str, ...]
    build: Callable[[Systems, Params], Awaitable[dict[str, Any]]]


def vsm_id_of(params: Params) -> str:
    return params.get("vsm_id") or "root"


def number(params: Params, name: str, default: int = 1) -> int:
    value = params.get(name, "")
    return int(value) if value.isdigit() and len(value) < 7 else default


async def build_map(systems: Systems, params: Params) -> dict[str, Any]:
    vsm_id = vsm_id_of(params)
    (status, s5, s4, s3, s2, children), agents = await asyncio.gather(
        asyncio.gather(
            systems.ask("queen", "status", StatusQuery(), SystemStatus),
            systems.ask("queen", "state", System5Query(), System5State, vsm_id),
            systems.ask("intelligence", "status", System4StatusQuery(), System4Status),
            systems.ask("control", "state", System3Query(), System3State, vsm_id),
            systems.ask("coordinator", "state", System2Query(), System2State, vsm_id),
            systems.ask("queen", "meta.list", MetaSystemQuery(), MetaSystemTree, vsm_id),
        ),
        systems.agents(),
    )
    mine = [a for a in agents if a.vsm_id == vsm_id]
    shown, counts = views.map_units(views.units(mine, s3, s2))
    return {
        "vsm_id": vsm_id,
        "states": views.service_states(status),
        "s5": s5,
        "s4": s4,
        "s3": s3,
        "s2": s2,
        "children": children.children if children else [],
        "units": shown,
        "unit_counts": counts,
        "unit_total": len(mine),
        "open": views.open_interventions(s5),
    }


async def build_agents(systems: Systems, params: Params) -> dict[str, Any]:
    kind = params.get("type", "")[:32]
    wanted = number(params, "page")
    listed, s3, s2, types = await asyncio.gather(
        systems.page_of_agents(kind, wanted),
        systems.ask("control", "state", System3Query(), System3State),
        systems.ask("coordinator", "state", System2Query(), System2State),
        systems.ask("operations", "types", DescribeAgentTypes(), AgentTypes),
    )
    agents, total = listed
    pages = views.page_count(total)
    if wanted > pages:  # past the end: the last page
        agents, total = await systems.page_of_agents(kind, pages)
    listing = views.Page(views.units(agents, s3, s2), min(wanted, pages), pages, total)
    known = types.types if types else []
    spawn = next((t for t in known if t.agent_type == params.get("spawn")), None)
    return {
        "listing": listing,
        "type": kind,
        "types": known,
        "spawn": spawn,
        "spawn_fields": views.form_fields(spawn.config_schema, "config.") if spawn else [],
        "reports": {u.agent_id: systems.hub.performance(u.agent_id) for u in listing.items},
    }


async def build_agent(systems: Systems, params: Params) -> dict[str, Any]:
    agent_id = params.get("id", "")[:128]
    reply, types, s3 = await asyncio.gather(
        systems.ask("operations", "get", GetAgent(agent_id=agent_id or "-"), AgentDescription),
        systems.ask("operations", "types", DescribeAgentTypes(), AgentTypes),
        systems.ask("control", "state", System3Query(), System3State),
    )
    agent = reply.agent if reply else None
    known = types.types if types else []
    kind = next((t for t in known if agent and t.agent_type == agent.agent_type), None)
    allocation = next((a for a in s3.allocations if a.agent_id == agent_id), None) if s3 else None
    commands = kind.commands if kind else {}
    command = params.get("command", "")
    command = command if command in commands else next(iter(commands), "")
    return {
        "agent_id": agent_id,
        "agent": agent,
        "kind": kind,
        "command": command,
        "command_info": commands.get(command),
        "command_fields": views.form_fields(commands[command].input_schema, "data.")
        if command
        else [],
        "allocation": allocation,
        "report": systems.hub.performance(agent_id),
    }


async def build_interventions(systems: Systems, params: Params) -> dict[str, Any]:
    vsm_id = vsm_id_of(params)
    s5, held = await asyncio.gather(
        systems.ask("queen", "state", System5Query(), System5State, vsm_id),
        systems.ask("queen", "approval.list", ApprovalQuery(), ApprovalList),
    )
    by_id = {i.intervention_id: i for i in s5.interventions} if s5 else {}
    return {
        "vsm_id": vsm_id,
        "s5": s5,
        "traced": {k: views.trace_id(i) for k, i in by_id.items()},
        "interventions": sorted(
            s5.interventions if s5 else [], key=lambda i: i.opened_at, reverse=True
        ),
        "alerts": alerts_of(s5) if s5 else [],
        "awaiting": len(held.approvals) if held else 0,
    }


async def build_approvals(systems: Systems, params: Params) -> dict[str, Any]:
    listed = await systems.ask("queen", "approval.list", ApprovalQuery(), ApprovalList)
    return {"approvals": listed.approvals if listed else []}


async def build_policies(systems: Systems, params: Params) -> dict[str, Any]:
    vsm_id = vsm_id_of(params)
    listing, identity = await asyncio.gather(
        systems.ask("queen", "policy.list", PolicyListQuery(), PolicyList, vsm_id),
        systems.ask("queen", "identity.get", IdentityQuery(), PolicyReply, vsm_id),
    )
    summaries = listing.policies if listing else []
    chosen = next((p for p in summaries if p.policy_type == params.get("type")), None)
    chosen = chosen or next(iter(summaries), None)
    record = diff = None
    if chosen is not None:
        latest = chosen.latest_version
        to_version = min(number(params, "to", latest), latest)
        from_version = min(number(params, "from", max(1, to_version - 1)), latest)
        query = PolicyQuery(policy_type=chosen.policy_type, version=to_version)
        record_reply = await systems.ask("queen", "policy.get", query, PolicyReply, vsm_id)
        record = record_reply.record if record_reply else None
        if from_version != to_version:
            ask = PolicyDiffQuery(
                policy_type=chosen.policy_type, from_version=from_version, to_version=to_version
            )
            diff = await systems.ask("queen", "policy.diff", ask, PolicyDiff, vsm_id)
    return {
        "vsm_id": vsm_id,
        "policies": summaries,
        "chosen": chosen,
        "record": record,
        "rows": views.diff_rows(diff) if diff else [],
        "diff": diff,
        "identity": identity.record if identity else None,
    }


async def build_systems(systems: Systems, params: Params) -> dict[str, Any]:
    vsm_id = vsm_id_of(params)
    s3, s2 = await asyncio.gather(
        systems.ask("control", "state", System3Query(), System3State, vsm_id),
        systems.ask("coordinator", "state", System2Query(), System2State, vsm_id),
    )
    return {"vsm_id": vsm_id, "s3": s3, "s2": s2}


async def build_trace(systems: Systems, params: Params) -> dict[str, Any]:
    message_id = params.get("id", "").strip()[:128]
    trace = None
    if message_id.startswith("iv-"):  # an intervention: traced from the signal that opened it
        s5 = await systems.ask("queen", "state", System5Query(), System5State, vsm_id_of(params))
        known = s5.interventions if s5 else []
        opened = next((i for i in known if i.intervention_id == message_id), None)
        message_id = views.trace_id(opened) if opened else message_id
    if message_id:
        trace = await systems.ask("queen", "trace", TraceQuery(message_id=message_id), Trace)
    graph = views.trace_graph(trace.chain) if trace else None
    chosen = params.get("node", "")
    node = next((n for n in graph.nodes if n.step.id == chosen), None) if graph else None
    return {"message_id": message_id, "trace": trace, "graph": graph, "node": node}


async def build_dead_letters(systems: Systems, params: Params) -> dict[str, Any]:
    """Counts for the live part; the chosen queue's latest only for the page itself (the
    `WHOLE` page), since every read returns the messages to their queue once more."""
    counts = await systems.dead_letters.counts(list(QUEUES))
    queues = [QueueCount(queue=q, count=c) for q, c in counts.items()]
    chosen = params.get("queue", "")
    opened = None
    if chosen in QUEUES and WHOLE in params:
        count = next(q.count for q in queues if q.queue == chosen)
        try:
            letters = await systems.dead_letters.peek(chosen, 20) if count else []
        except NoSuchDeadLetter:
            letters = []
        opened = DeadLetterQueue(queue=chosen, count=count, latest=[view(x) for x in letters])
    return {"queues": queues, "opened": opened}


MAP_TOPICS = (
    "algedonic", "interventions", "policy", "alerts", "control", "coordination", "registry",
    "recursion",
)  # fmt: skip
TRACE_TOPICS = ("interventions", "policy", "control", "coordination", "alerts")
PAGES: dict[str, PageSpec] = {
    "map": PageSpec("Map", "map.html", MAP_TOPICS, build_map),
    "agents": PageSpec("Agents", "agents.html", ("registry", "control"), build_agents),
    "agent": PageSpec("Agent", "agent.html", ("registry", "control"), build_agent),
    "interventions": PageSpec(
        "Interventions",
        "interventions.html",
        ("interventions", "alerts", "policy", "approvals"),
        build_interventions,
    ),
    "approvals": PageSpec("Approvals", "approvals.html", ("approvals",), build_approvals),
    "policies": PageSpec("Policies", "policies.html", ("policy",), build_policies),
    "systems": PageSpec("S3 and S2", "systems.html", ("control", "coordination"), build_systems),
    "trace": PageSpec("Trace", "trace.html", TRACE_TOPICS, build_trace),
    "dead-letters": PageSpec(
        "Dead letters", "dead_letters.html", ("dead_letters",), build_dead_letters
    ),
}
NAV = (
    "map", "agents", "interventions", "approvals", "policies", "systems", "trace", "dead-letters",
)  # fmt: skip
