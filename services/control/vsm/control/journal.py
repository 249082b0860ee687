"""S3's decisions as a journal snapshot and back: budgets, carved child budgets, grants,
throttle expiries and S2's damping (with what policy wants for a damped agent meanwhile).

Pure: `snapshot_of` reads System 3, `restore` rebuilds it. The snapshot is written to
`vsm.system3.journal` after every change (`vsm.kit.journal`); what S3 merely observes
(performance reports, the last audit) is not a decision and is learnt again.
"""

from __future__ import annotations

from typing import cast, get_args

from vsm.contract.control import (
    AccountRecord,
    BudgetRecord,
    DampingRecord,
    HeldRecord,
    SpendRecord,
    System3Snapshot,
    ThrottleRecord,
)
from vsm.control.changes import ChangeKind
from vsm.control.damping import Damper, Held
from vsm.control.ledger import Account, SystemBudget
from vsm.control.policies import Desired
from vsm.control.spending import DaySpend
from vsm.control.system3 import Expiry, System3


def _account(account: Account) -> AccountRecord:
    return AccountRecord(
        agent_id=account.agent_id,
        agent_type=account.agent_type,
        vsm_id=account.vsm_id,
        resources=account.resources,
        base_slots=account.base_slots,
        priority=account.priority,
        max_rate_per_s=account.max_rate_per_s,
        limited=account.limited,
        slot_cap=account.slot_cap,
        reason=account.reason,
        usd_share=account.usd_share,
    )


def _opened(record: AccountRecord) -> Account:
    return Account(**record.model_dump(exclude={"resources"}), resources=record.resources)


def snapshot_of(s3: System3) -> System3Snapshot:
    ledger, damper = s3.ledger, s3.damper
    subjects = sorted(set(damper.until) | set(damper.held))
    return System3Snapshot(
        budgets=[
            BudgetRecord(vsm_id=vsm_id, budget=system.budget, children=dict(system.children))
            for vsm_id, system in sorted(ledger.systems.items())
        ],
        accounts=[
            _account(account)
            for _, system in sorted(ledger.systems.items())
            for _, account in sorted(system.accounts.items())
        ],
        throttles=[
            ThrottleRecord(vsm_id=vsm_id, expires_at=expiry.at, policy=expiry.label)
            for vsm_id, expiry in sorted(s3.throttle_expiry.items())
        ],
        damping=[
            DampingRecord(
                subject=subject, until=damper.until.get(subject), held=_held(damper, subject)
            )
            for subject in subjects
        ],
        spend=_spend(s3.spend),
    )


def _spend(spend: DaySpend) -> SpendRecord:
    return SpendRecord(
        day=spend.day,
        agents=dict(sorted(spend.agents.items())),
        others=dict(sorted(spend.others.items())),
        calls=dict(sorted(spend.calls.items())),
        over=sorted(spend.over),
        exhausted=sorted(spend.exhausted),
        alerted=sorted(spend.alerted),
    )


def _held(damper: Damper, subject: str) -> HeldRecord | None:
    held = damper.held.get(subject)
    if held is None:
        return None
    desired = held.desired
    return HeldRecord(
        account=_account(desired.account),
        kind=desired.kind,
        reason=desired.reason,
        policy=held.policy,
    )


def restore(s3: System3, snapshot: System3Snapshot) -> None:
    """Make System 3 what the snapshot says (causes are not kept: a change released later
    names its policy, not the message that carried it)."""
    ledger = s3.ledger
    ledger.systems = {
        record.vsm_id: SystemBudget(budget=record.budget, children=dict(record.children))
        for record in snapshot.budgets
    }
    ledger.where = {}
    for record in snapshot.accounts:
        ledger.system(record.vsm_id).accounts[record.agent_id] = _opened(record)
        ledger.where[record.agent_id] = record.vsm_id
    s3.throttle_expiry = {
        record.vsm_id: Expiry(record.expires_at, record.policy, None)
        for record in snapshot.throttles
    }
    s3.damper.until = {r.subject: r.until for r in snapshot.damping if r.until is not None}
    s3.damper.held = {r.subject: _kept(r.held) for r in snapshot.damping if r.held is not None}
    if (kept := snapshot.spend) is not None:  # a past day's is let go at its next use
        s3.spend = DaySpend(
            day=kept.day,
            agents=dict(kept.agents),
            others=dict(kept.others),
            over=set(kept.over),
            exhausted=set(kept.exhausted),
            calls=dict(kept.calls),
            alerted=set(kept.alerted),
        )


def _kept(held: HeldRecord) -> Held:
    desired = Desired(_opened(held.account), _kind(held.kind), held.reason)
    return Held(desired, held.policy, None)


def _kind(kind: str) -> ChangeKind:
    return cast(ChangeKind, kind) if kind in get_args(ChangeKind) else "restored"
