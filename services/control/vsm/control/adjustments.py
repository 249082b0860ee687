"""S3's own adaptation steps on the ledger: capacity (incremental) and isolation (defensive).

`capacity`: every agent named (by id or type) gets max(1, base slots x factor) slots; growth
comes only from the budget's free slots. `isolate`: the agent gets no slots, so S2 dispatches
nothing to it and its share returns to the budget. A circuit breaker lets it back: after
`probe_after_s` it is readmitted on one slot (half-open); a performance report failing more
than `HEALTHY_FAILURE_SHARE` isolates it again, a healthy one (or none within another probe
period) gives it its base slots back (closed). Each returns desired accounts, as `policies` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vsm.contract.performance import UnitPerformance
from vsm.control.changes import with_slots
from vsm.control.ledger import Account, SystemBudget
from vsm.control.policies import Desired, names_agent, plural

HEALTHY_FAILURE_SHARE = 0.2


def named(target: str, account: Account) -> bool:
    return names_agent(target, account.agent_id) or target == account.agent_type


def capacity(system: SystemBudget, target: str, factor: float, label: str) -> list[Desired]:
    free = system.free()["concurrency_slots"]
    desired = []
    for account in sorted(system.accounts.values(), key=lambda a: a.agent_id):
        if not named(target, account):
            continue
        held = account.resources.concurrency_slots
        slots = max(1, round(account.base_slots * factor))
        if account.slot_cap is not None:
            slots = min(slots, account.slot_cap)
        if slots > held:
            slots = held + min(slots - held, max(0, free))
        free -= max(0, slots - held)
        reason = f"{label}: capacity x{factor:g} for {target}: {account.agent_id} to "
        reason += plural(slots, "slot")
        after = replace(account, resources=with_slots(account.resources, slots), reason=reason)
        desired.append(Desired(after, "adaptation", reason))
    return desired


def isolate(account: Account, label: str) -> Desired:
    reason = f"{label}: {account.agent_id} isolated: S2 dispatches nothing to it until healthy"
    after = replace(account, resources=with_slots(account.resources, 0), reason=reason)
    return Desired(after, "adaptation", reason)


def readmit(account: Account, slots: int, label: str) -> Desired:
    state = "on probation" if slots < account.base_slots else "healthy again"
    reason = f"{label}: {account.agent_id} readmitted {state}: {plural(slots, 'slot')}"
    after = replace(account, resources=with_slots(account.resources, slots), reason=reason)
    return Desired(after, "adaptation", reason)


def failing(report: UnitPerformance) -> bool:
    done = report.succeeded + report.failed
    return done > 0 and report.failed / done > HEALTHY_FAILURE_SHARE


@dataclass
class Breaker:
    """The isolated agents: agent id -> (state, when its probe period ends, label)."""

    probe_after_s: float
    isolated: dict[str, tuple[str, float, str]] = field(default_factory=dict)

    def open(self, agent_id: str, now: float, label: str) -> None:
        self.isolated[agent_id] = ("open", now + self.probe_after_s, label)

    def due(self, now: float) -> list[tuple[str, str, str]]:
        """(agent id, what to do, label): `probe` (half-open) or `close` (healthy), now."""
        moves = []
        for agent_id, (state, at, label) in list(self.isolated.items()):
            if at > now:
                continue
            if state == "open":
                self.isolated[agent_id] = ("half-open", now + self.probe_after_s, label)
                moves.append((agent_id, "probe", label))
            else:
                del self.isolated[agent_id]
                moves.append((agent_id, "close", label))
        return moves

    def reported(self, report: UnitPerformance, now: float) -> str | None:
        """A half-open agent's report decides: `reopen` when failing, else `close`."""
        known = self.isolated.get(report.agent_id)
        if known is None or known[0] != "half-open" or report.succeeded + report.failed == 0:
            return None  # no work on probation proves nothing: the period decides
        if failing(report):
            self.open(report.agent_id, now, known[2])
            return "reopen"
        del self.isolated[report.agent_id]
        return "close"
