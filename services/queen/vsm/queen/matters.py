"""S5's matters in hand as a journal snapshot and back: open interventions, pending approvals.

Pure: `snapshot_of` reads the interventions not yet resolved and the Desk's proposals,
`restore` gives them back. The snapshot is written to `vsm.system5.journal`
(`vsm.kit.journal`) when either changes, before the change is answered or announced; the
policies are the policy log's (`vsm.queen.journal`), and the levels S5 feels are felt again.
An intervention comes back with its episode, which its viable system's feeling holds open
again at the pain it opened with (decaying from then), so it resolves as it would have. An
approval whose deadline passed while S5 was down comes back too, and the monitor's first tick
expires it with the usual `expired` outcome.
"""

from __future__ import annotations

from collections import Counter

from vsm.contract.system5 import (
    MAX_KEPT,
    EpisodeRecord,
    InterventionRecord,
    ProposalRecord,
    System5Snapshot,
)
from vsm.queen.algedonic import Episode
from vsm.queen.approvals import Desk, Proposal
from vsm.queen.interventions import Intervention
from vsm.queen.system5 import System5

__all__ = ["record_of", "restore", "snapshot_of"]


def record_of(intervention: Intervention) -> InterventionRecord:
    episode = intervention.episode
    status = intervention.status
    if status == "resolved":
        raise ValueError(f"intervention {intervention.id} is resolved: only open ones are kept")
    return InterventionRecord(
        intervention_id=intervention.id,
        vsm_id=intervention.vsm_id,
        status=status,
        escalation_level=intervention.escalation_level,
        last_escalated_at=intervention.last_escalated_at,
        alert_ids=list(intervention.alert_ids),
        policy_type=intervention.policy_type,
        policy_version=intervention.policy_version,
        throttled=intervention.throttled,
        episode=EpisodeRecord(
            trigger=episode.trigger,
            opened_at=episode.opened_at,
            pain_at_open=episode.pain_at_open,
            causes=list(episode.causes),
            reasons=dict(episode.reasons),
            origins=dict(episode.origins),
            sender_episodes=sorted(episode.sender_episodes),
        ),
        cause=intervention.cause,
        opened=intervention.opened,
    )


def snapshot_of(s5: System5, desk: Desk) -> System5Snapshot:
    kept = [i for i in s5.interventions.values() if i.status != "resolved"]
    return System5Snapshot(
        interventions=[record_of(i) for i in kept[-MAX_KEPT:]],
        approvals=[
            ProposalRecord(approval=p.approval, causation=list(p.causation), requested=p.requested)
            for p in list(desk.pending.values())[-MAX_KEPT:]
        ],
    )


def intervention_of(record: InterventionRecord) -> Intervention:
    kept = record.episode
    episode = Episode(
        trigger=kept.trigger,
        opened_at=kept.opened_at,
        pain_at_open=kept.pain_at_open,
        causes=list(kept.causes),
        reasons=Counter(kept.reasons),
        origins=Counter(kept.origins),
        sender_episodes=set(kept.sender_episodes),
    )
    return Intervention(
        vsm_id=record.vsm_id,
        episode=episode,
        cause=record.cause,
        id=record.intervention_id,
        status=record.status,
        escalation_level=record.escalation_level,
        last_escalated_at=record.last_escalated_at,
        alert_ids=list(record.alert_ids),
        policy_type=record.policy_type,
        policy_version=record.policy_version,
        opened=record.opened,
        throttled=record.throttled,
    )


def restore(s5: System5, desk: Desk, snapshot: System5Snapshot) -> None:
    """The interventions and proposals back (what is already held again is left as it is)."""
    for record in snapshot.interventions:
        if record.intervention_id in s5.interventions:
            continue
        intervention = intervention_of(record)
        s5.interventions[intervention.id] = intervention
        feeling = s5.feeling(intervention.vsm_id)
        if feeling.episode is None:
            feeling.episode = intervention.episode
            feeling.pain = max(feeling.pain, intervention.episode.pain_at_open)
            feeling.at = feeling.at or intervention.episode.opened_at
    for kept in snapshot.approvals:
        approval_id = kept.approval.approval_id
        if approval_id in desk.pending or len(desk.pending) >= desk.max_pending:
            continue
        desk.pending[approval_id] = Proposal(
            kept.approval, kept.approval.policy, list(kept.causation), kept.requested
        )
