"""LLM spend of the UTC day against each viable system's daily cap and each agent's share.

Plain data and plain functions, no I/O. A viable system with a USD budget
(`Resources.llm_usd_per_day`) has its own cap: the budget less what its children carved. Its
agents hold shares of that cap (`Account.usd_share`), never more than the cap in all, and
each agent's allowance refuses a call that could take its spend past its share (the agent
side, `vsm.kit.llm_allowance`), so the cap is never overspent by agents.

Spend comes from `LlmUsage` records (`charge`) and from agents' performance reports
(`reported`, which only ever raises what S3 knew: after a restart of control the day's spend
comes back from the agents). Services' own calls (S5's synthesis, S4's amplifier) and agents
that are gone count to their system.

`crossings` says once when a subject (an agent's share, a system's cap) passes `WARN_AT` of
its cap (again only after a new budget or on a new day); `refused` says once when an agent's
call was refused (again after its share grew). `shift` moves
shares to a busy agent: first what the system has not shared, then half of the unspent share
of each idle agent (one that spent less than `IDLE_BELOW` of its share).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from vsm.control.ledger import Account, Ledger, SystemBudget

WARN_AT = 0.8
"""The share of a cap whose crossing raises pain (reason `budget`) and warns operators."""
IDLE_BELOW = 0.5
"""An agent that spent less than this share of its share is idle: it gives to busy ones."""
FIRST_SHARE = 0.5
"""An agent admitted to a system with a USD budget gets this share of what is not shared."""
PRECISION = 1e-9

Level = Literal["warning", "exhausted"]


@dataclass(frozen=True)
class Crossing:
    """A subject passed `WARN_AT` of its cap (`warning`), or was refused a call (`exhausted`)."""

    level: Level
    vsm_id: str
    agent_id: str | None
    """None: the viable system as a whole."""
    spent_usd: float
    cap_usd: float

    @property
    def subject(self) -> str:
        return self.agent_id or self.vsm_id


@dataclass
class DaySpend:
    day: date
    agents: dict[str, float] = field(default_factory=dict)
    """Agent id -> USD spent today (agents S3 knows)."""
    others: dict[str, float] = field(default_factory=dict)
    """Viable system -> USD spent today by its services' own calls and by agents gone."""
    over: set[str] = field(default_factory=set)
    """Subjects that crossed `WARN_AT` of their cap (until a new budget or a new day)."""
    exhausted: set[str] = field(default_factory=set)
    """Agents refused a call since their share last grew; systems with nothing left to give."""
    calls: dict[str, int] = field(default_factory=dict)
    """Agent id -> calls charged today (for the rate its share can sustain)."""
    alerted: set[tuple[str, Level]] = field(default_factory=set)
    """(subject, level) operators were alerted of today: once a day each."""


def today_of(spend: DaySpend, today: date) -> DaySpend:
    """The same record, or a fresh one when the UTC day has changed."""
    return spend if spend.day == today else DaySpend(day=today)


def own_cap(system: SystemBudget) -> float | None:
    """The system's own daily cap: its budget less its children's (None: no USD budget)."""
    cap = system.budget.llm_usd_per_day
    if cap is None:
        return None
    carved = sum(child.llm_usd_per_day or 0.0 for child in system.children.values())
    return max(0.0, cap - carved)


def shared(system: SystemBudget) -> float:
    return sum(a.usd_share or 0.0 for a in system.accounts.values())


def unshared(system: SystemBudget) -> float:
    """What of the system's own cap no agent holds (0 without a USD budget)."""
    cap = own_cap(system)
    return 0.0 if cap is None else max(0.0, cap - shared(system))


def system_spent(spend: DaySpend, system: SystemBudget, vsm_id: str) -> float:
    agents = sum(spend.agents.get(agent_id, 0.0) for agent_id in system.accounts)
    return spend.others.get(vsm_id, 0.0) + agents


def charge(spend: DaySpend, ledger: Ledger, vsm_id: str, agent_id: str, usd: float) -> bool:
    """Count one call's cost to the agent (when S3 knows it) or to its system (when S3 knows
    the system); False when it is charged to neither (a system S3 keeps nothing of)."""
    if ledger.account(agent_id) is not None:
        spend.agents[agent_id] = spend.agents.get(agent_id, 0.0) + usd
        spend.calls[agent_id] = spend.calls.get(agent_id, 0) + (1 if usd else 0)
        return True
    if vsm_id in ledger.systems:
        spend.others[vsm_id] = spend.others.get(vsm_id, 0.0) + usd
        return True
    return False


def reported(spend: DaySpend, ledger: Ledger, agent_id: str, usd: float) -> None:
    """An agent says what it spent today: S3 keeps the higher of that and what it counted."""
    if ledger.account(agent_id) is not None and usd > spend.agents.get(agent_id, 0.0):
        spend.agents[agent_id] = usd


def gone(spend: DaySpend, account: Account) -> None:
    """An agent left: what it spent today stays its system's."""
    usd = spend.agents.pop(account.agent_id, 0.0)
    if usd:
        spend.others[account.vsm_id] = spend.others.get(account.vsm_id, 0.0) + usd
    spend.over.discard(account.agent_id)
    spend.exhausted.discard(account.agent_id)
    spend.calls.pop(account.agent_id, None)


def alert_due(spend: DaySpend, crossing: Crossing) -> bool:
    """Whether operators are yet to hear of this subject at this level today (then noted)."""
    key = (crossing.subject, crossing.level)
    if key in spend.alerted:
        return False
    spend.alerted.add(key)
    return True


def sustainable_rate_per_s(
    spend: DaySpend, crossing: Crossing, seconds_left: float
) -> float | None:
    """Calls per second an agent can keep up until the day ends within its cap, at its mean
    cost per call so far (None for a system, or an agent with no call yet)."""
    if crossing.agent_id is None:
        return None
    calls = spend.calls.get(crossing.agent_id, 0)
    if not calls or crossing.spent_usd <= 0:
        return None
    left = max(0.0, crossing.cap_usd - crossing.spent_usd)
    return left / (crossing.spent_usd / calls) / max(1.0, seconds_left)


def _crossed(spend: DaySpend, subject: str, spent: float, cap: float) -> bool:
    """Whether `subject` has just crossed `WARN_AT` of `cap` (then it is remembered: a share
    S3 itself enlarged does not make it cross again, a new budget or a new day does)."""
    if subject in spend.over or spent <= PRECISION or spent < WARN_AT * cap:
        return False
    spend.over.add(subject)
    return True


def crossings(spend: DaySpend, ledger: Ledger, vsm_id: str, agent_id: str) -> list[Crossing]:
    """What a charge to `agent_id` in `vsm_id` has just pushed past `WARN_AT`: the agent's
    share, its system's cap, each at most once per crossing."""
    system = ledger.systems.get(vsm_id)
    if system is None:
        return []
    found = []
    account = system.accounts.get(agent_id)
    if account is not None and account.usd_share is not None:
        spent = spend.agents.get(agent_id, 0.0)
        if _crossed(spend, agent_id, spent, account.usd_share):
            found.append(Crossing("warning", vsm_id, agent_id, spent, account.usd_share))
    cap = own_cap(system)
    if cap is not None:
        spent = system_spent(spend, system, vsm_id)
        if _crossed(spend, vsm_id, spent, cap):
            found.append(Crossing("warning", vsm_id, None, spent, cap))
    return found


def refused(spend: DaySpend, ledger: Ledger, agent_id: str) -> Crossing | None:
    """An agent's call was refused for its share: `exhausted`, once until its share grows."""
    account = ledger.account(agent_id)
    if account is None or account.usd_share is None or agent_id in spend.exhausted:
        return None
    spend.exhausted.add(agent_id)
    spent = spend.agents.get(agent_id, 0.0)
    return Crossing("exhausted", account.vsm_id, agent_id, spent, account.usd_share)


def first_share(system: SystemBudget) -> float | None:
    """The share of an agent joining the system: half of what no agent holds yet."""
    if own_cap(system) is None:
        return None
    return _down(unshared(system) * FIRST_SHARE)


def spread(system: SystemBudget, spend: DaySpend, vsm_id: str) -> list[Account]:
    """The system's budget was set: every agent keeps what it spent and gets an equal part of
    half of what is left of the cap (the other half left unshared, for `shift`)."""
    cap = own_cap(system)
    agents = sorted(system.accounts.values(), key=lambda a: a.agent_id)
    if cap is None:
        return [replace(a, usd_share=None) for a in agents]
    left = max(0.0, cap - system_spent(spend, system, vsm_id))
    spend.over -= {vsm_id, *system.accounts}  # a new budget: crossings count afresh
    part = left * FIRST_SHARE / max(1, len(agents))
    return [replace(a, usd_share=_down(spend.agents.get(a.agent_id, 0.0) + part)) for a in agents]


def mean_cost(spend: DaySpend, agent_id: str) -> float:
    """An agent's mean cost per call today (0 before its first)."""
    calls = spend.calls.get(agent_id, 0)
    return spend.agents.get(agent_id, 0.0) / calls if calls else 0.0


def shift(system: SystemBudget, spend: DaySpend, busy: Account) -> list[Account]:
    """More share for `busy`, within the cap: what no agent holds, then half the unspent share
    of each idle agent. The accounts to change (the busy one last); none if what could be
    found would not pay for one more of its calls at its mean cost."""
    if busy.usd_share is None:
        return []
    given = unshared(system)
    donors = []
    for account in sorted(system.accounts.values(), key=lambda a: a.agent_id):
        share = account.usd_share
        if account.agent_id == busy.agent_id or not share:
            continue
        spent = spend.agents.get(account.agent_id, 0.0)
        if spent >= IDLE_BELOW * share:
            continue
        gift = _down((share - spent) / 2)
        if gift > PRECISION:
            donors.append(replace(account, usd_share=_down(share - gift)))
            given += gift
    given = _down(given)
    if given <= max(PRECISION, mean_cost(spend, busy.agent_id)):
        return []
    spend.exhausted.discard(busy.agent_id)
    return [*donors, replace(busy, usd_share=_down(busy.usd_share + given))]


def _down(usd: float) -> float:
    """Rounded down to a millionth of a dollar, so that shares never add up past a cap."""
    return int(usd * 1e6) / 1e6
