"""Fair-share scheduling of S1 work across lanes: stride scheduling with aging.

Serving a lane advances its pass by 1/weight and the lane with the smallest pass goes next,
so lanes are served in proportion to their weights; a new or returning lane starts at the
current minimum pass, so idleness earns no credit. Aging bounds the wait of a light lane
under a heavy one: an item that has waited at the front of its lane longer than
`starvation_s` is served first, longest wait first. Its wait counts from its arrival or its
lane's last dispatch, whichever is later: a busy lane's backlog is being served, not starved.
Only items whose agent can take a command now are handed out, and none of a shed lane.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vsm.contract.coordination import LaneState

Eligible = Callable[[str], bool]


@dataclass(frozen=True)
class Ticket:
    """One held work item, as the scheduler sees it."""

    command_id: str
    lane: str
    agent_id: str
    arrived: float
    seq: int


@dataclass
class Lane:
    name: str
    weight: int
    pass_: float = 0.0
    last_served: float | None = None
    dispatched: int = 0
    size: int = 0
    touched: float = 0.0
    queues: dict[str, deque[Ticket]] = field(default_factory=dict)
    """Per agent, in arrival order: an agent without a free slot does not block the others."""

    def head(self, eligible: Eligible) -> Ticket | None:
        best: Ticket | None = None
        for agent_id, queue in self.queues.items():
            if (best is None or queue[0].seq < best.seq) and eligible(agent_id):
                best = queue[0]
        return best

    def waiting_since(self, ticket: Ticket) -> float:
        return max(ticket.arrived, self.last_served or ticket.arrived)


class FairShare:
    def __init__(self, starvation_s: float) -> None:
        self.starvation_s = starvation_s
        self.lanes: dict[str, Lane] = {}
        self.floor = 0.0
        self._seq = itertools.count()
        self.shed: set[str] = set()
        """Lanes a defensive adaptation holds back: their work waits, nothing is dispatched."""

    def add(self, lane: str, weight: int, agent_id: str, command_id: str, now: float) -> Ticket:
        known = self.lanes.get(lane)
        if known is None:
            known = self.lanes[lane] = Lane(lane, weight)
        if known.size == 0:
            known.pass_ = self._minimum_pass()
        known.weight = weight
        known.touched = now
        ticket = Ticket(command_id, lane, agent_id, now, next(self._seq))
        known.queues.setdefault(agent_id, deque()).append(ticket)
        known.size += 1
        return ticket

    def next(self, now: float, eligible: Eligible) -> Ticket | None:
        """The item to dispatch now, taken off its lane; None when no agent can take one."""
        lanes = [lane for lane in self.lanes.values() if lane.size and lane.name not in self.shed]
        heads = [(lane, t) for lane in lanes if (t := lane.head(eligible)) is not None]
        if not heads:
            return None
        self.floor = self._minimum_pass()
        aged = [(lane.waiting_since(t), t.seq, lane, t) for lane, t in heads]
        aged = [entry for entry in aged if now - entry[0] >= self.starvation_s]
        if aged:
            _, _, lane, ticket = min(aged, key=lambda entry: entry[:2])
        else:
            lane, ticket = min(heads, key=lambda head: (head[0].pass_, head[1].seq))
        self._take(lane, ticket, now)
        return ticket

    def _take(self, lane: Lane, ticket: Ticket, now: float) -> None:
        queue = lane.queues[ticket.agent_id]
        queue.popleft()
        if not queue:
            del lane.queues[ticket.agent_id]
        lane.size -= 1
        lane.pass_ += 1 / lane.weight
        lane.dispatched += 1
        lane.last_served = lane.touched = now

    def _minimum_pass(self) -> float:
        return min((lane.pass_ for lane in self.lanes.values() if lane.size), default=self.floor)

    def remove_agent(self, agent_id: str) -> list[Ticket]:
        """Take every item for `agent_id` off the lanes (the agent is gone)."""
        removed: list[Ticket] = []
        for lane in self.lanes.values():
            queue = lane.queues.pop(agent_id, None)
            if queue:
                lane.size -= len(queue)
                removed.extend(queue)
        return removed

    def queued_for(self, agent_id: str) -> int:
        return sum(len(lane.queues.get(agent_id, ())) for lane in self.lanes.values())

    def waiting(self) -> dict[str, int]:
        """Items waiting per address (an agent id, or an agent type's address)."""
        counts: dict[str, int] = {}
        for lane in self.lanes.values():
            for address, queue in lane.queues.items():
                counts[address] = counts.get(address, 0) + len(queue)
        return counts

    def queued(self) -> int:
        return sum(lane.size for lane in self.lanes.values())

    def forget_idle(self, now: float, idle_s: float) -> None:
        """Drop empty lanes unused for `idle_s`, so lanes named once do not pile up."""
        for name, lane in list(self.lanes.items()):
            if lane.size == 0 and now - lane.touched >= idle_s:
                del self.lanes[name]

    def state(self, now: float) -> list[LaneState]:
        return [
            LaneState(
                lane=lane.name,
                weight=lane.weight,
                queued=lane.size,
                dispatched=lane.dispatched,
                oldest_wait_s=round(
                    now - min((q[0].arrived for q in lane.queues.values()), default=now), 3
                ),
            )
            for lane in sorted(self.lanes.values(), key=lambda lane: lane.name)
        ]
