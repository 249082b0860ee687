"""What the console hears from the bus: which topics changed, the latest algedonic signal,
and each agent's latest performance report, through one transient observer per replica.

The observer runs only while a console is open (it starts with the first live view and
stops a while after the last), so a gateway nobody watches pays nothing. A message only
bumps its topic's counter (and a performance report is kept as bytes, read when shown):
however busy the bus, the cost per message is a dictionary update, and views are rendered
at most a few times a second whatever arrives (see `stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.approvals import ApprovalDecided, ApprovalRequested
from vsm.contract.control import AllocationChanged, AuditFindings, ResourceHeadroom
from vsm.contract.coordination import Damping, OscillationDetected, OscillationIndex, Rescheduled
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    AgentCrashed,
    AgentSpawned,
    AgentsSpawned,
    AgentsTerminated,
    AgentTerminated,
)
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import PolicyChanged
from vsm.contract.recursion import MetaSystemRetired, MetaSystemSpawned, ViabilityReport
from vsm.contract.system5 import (
    AlertAcknowledgement,
    InterventionOpened,
    InterventionResolved,
    OperatorAlert,
)
from vsm.kit.bus import Bus
from vsm.kit.observer import Observer

Topic = str
B = topology.Binding
WATCHED: dict[Topic, tuple[topology.Binding, ...]] = {
    "algedonic": (B(topology.ALGEDONIC),),
    "interventions": (B(topology.INTERVENTIONS, "#"),),
    "policy": (B(topology.POLICY),),
    "alerts": (B(topology.OPERATORS, "#"),),
    "approvals": (B(topology.OPERATORS, "approval.#"),),
    "control": (
        B(topology.CONTROL, "allocation.#"),
        B(topology.CONTROL, "audit.report"),
        B(topology.CONTROL, "s3.headroom"),
    ),
    "performance": (B(topology.CONTROL, "s1.performance.*"),),
    "coordination": (
        B(topology.COORDINATION, "oscillation.#"),
        B(topology.COORDINATION, "damping.#"),
        B(topology.COORDINATION, "rescheduled.#"),
        B(topology.COORDINATION, "s2.oscillation"),
    ),
    "registry": (B(topology.S1_REGISTRY, "agent.#"),),
    "recursion": (
        B(topology.RECURSIVE, "spawned.#"),
        B(topology.RECURSIVE, "retired.#"),
        B(topology.RECURSIVE, "report.#"),
    ),
    "dead_letters": tuple(
        B(topology.DEAD_LETTER, key)
        for key in dict.fromkeys(
            [
                *(q.dead_letter_key for q in topology.SHARED_QUEUES if q.kind == "quorum"),
                AGENT_DEAD_LETTERS,
            ]
        )
    ),
}
SHOWN = (
    AlgedonicSignal,
    InterventionOpened,
    InterventionResolved,
    PolicyChanged,
    OperatorAlert,
    AlertAcknowledgement,
    ApprovalRequested,
    ApprovalDecided,
    AllocationChanged,
    AuditFindings,
    ResourceHeadroom,
    UnitPerformance,
    OscillationDetected,
    Damping,
    Rescheduled,
    OscillationIndex,
    AgentSpawned,
    AgentsSpawned,
    AgentTerminated,
    AgentsTerminated,
    AgentCrashed,
    MetaSystemSpawned,
    MetaSystemRetired,
    ViabilityReport,
)
"""The message types on the watched bindings (dead letters are of any type)."""
PERFORMANCE_KEY = "s1.performance."
BY_KEY = {
    "performance": (topology.CONTROL.name, PERFORMANCE_KEY),
    "approvals": (topology.OPERATORS.name, "approval."),
}
"""Topics told apart from their exchange's other topic by the routing key's start."""
KEEP_REPORTS = 20_000
LINGER_S = 30.0


TOPIC_OF_EXCHANGE = {
    b.exchange.name: topic for topic, group in WATCHED.items() if topic not in BY_KEY for b in group
}


def topic_of(exchange: str, routing_key: str) -> Topic | None:
    for topic, (on, prefix) in BY_KEY.items():
        if exchange == on and routing_key.startswith(prefix):
            return topic
    return TOPIC_OF_EXCHANGE.get(exchange)


@dataclass
class Signal:
    """The latest algedonic signal heard: what the map's channel shows travelling to S5."""

    serial: int
    kind: str
    vsm_id: str
    intensity: float


@dataclass
class Hub:
    versions: dict[Topic, int] = field(default_factory=lambda: dict.fromkeys(WATCHED, 0))
    signal: Signal | None = None
    reports: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    _next: asyncio.Future[None] | None = None

    def hear(self, exchange: str, routing_key: str, body: bytes) -> None:
        """One message observed on the bus: bump its topic (and keep what views show)."""
        topic = topic_of(exchange, routing_key)
        if topic is None:
            return
        self.versions[topic] += 1
        if topic == "performance":
            self._keep_report(routing_key[len(PERFORMANCE_KEY) :], body)
            return
        if topic == "algedonic":
            self._heard_signal(body)
        if self._next is not None:
            self._next.set_result(None)
            self._next = None

    def _keep_report(self, agent_id: str, body: bytes) -> None:
        self.reports[agent_id] = body
        self.reports.move_to_end(agent_id)
        while len(self.reports) > KEEP_REPORTS:
            self.reports.popitem(last=False)

    def _heard_signal(self, body: bytes) -> None:
        try:
            envelope = json.loads(body)
            data = envelope["data"]
            kind, intensity = str(data["kind"]), float(data["intensity"])
            vsm_id = str(envelope.get("vsmid") or envelope.get("vsm_id") or "root")
        except (ValueError, KeyError, TypeError):
            return
        serial = self.signal.serial + 1 if self.signal else 1
        self.signal = Signal(serial, kind, vsm_id, intensity)

    def performance(self, agent_id: str) -> UnitPerformance | None:
        """The agent's latest performance report, as heard (None before its first)."""
        raw = self.reports.get(agent_id)
        if raw is None:
            return None
        try:
            data = json.loads(raw)["data"]
            return UnitPerformance.model_validate(data)
        except (ValueError, KeyError, TypeError):
            return None

    def stamp(self, topics: tuple[Topic, ...]) -> tuple[int, ...]:
        return tuple(self.versions[t] for t in topics)

    async def changed(
        self, topics: tuple[Topic, ...], since: tuple[int, ...], timeout: float
    ) -> None:
        """Until one of `topics` moves past the versions `since`, or `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.stamp(topics) == since:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._next), left)


class Listening:
    """Starts the observer with the first live view and stops it `LINGER_S` after the last."""

    def __init__(self, bus: Bus, hub: Hub, linger_s: float = LINGER_S) -> None:
        bindings = [b for group in WATCHED.values() for b in group]
        self.observer = Observer(bus, bindings, hub.hear)
        watched = topology.Queue(
            f"vsm.observer.{bus.service}.{{id}}",
            tuple(bindings),
            "The console's live view (exclusive, while someone watches): what its pages show, "
            "and the dead letters of every queue.",
        )
        bus.interface.receives(watched, *SHOWN)
        self.linger_s = linger_s
        self.viewers = 0
        self._stopping: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def join(self) -> None:
        self.viewers += 1
        if self._stopping is not None:
            self._stopping.cancel()
            self._stopping = None
        async with self._lock:
            await self.observer.start()

    def leave(self) -> None:
        self.viewers -= 1
        if self.viewers == 0 and self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop_later())

    async def _stop_later(self) -> None:
        await asyncio.sleep(self.linger_s)
        async with self._lock:
            if self.viewers == 0:
                await self.observer.stop()
        self._stopping = None

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.cancel()
        await self.observer.stop()
