"""Policy synthesis from an anomaly: the LLM when configured, the rules always.

The LLM's proposal is admitted exactly like any other policy (schema, then identity), and
never as the identity itself (`check_author`); whenever it fails (API error, timeout,
429/529, output that is invalid, contradicts the identity or would replace it) the rules'
answer is applied instead and the result says why. A proposal the decision rights hold
for a person (`AwaitingApproval`) is no failure: nothing is applied until it is decided.
"""

from __future__ import annotations

from typing import Any

from vsm.contract.envelope import Envelope
from vsm.contract.policy import PolicyRecord
from vsm.contract.system5 import SynthesisResult
from vsm.queen.journal import PolicyJournal
from vsm.queen.llm import LlmFailed, LlmProposer
from vsm.queen.policies import PolicyRejected
from vsm.queen.proposals import AwaitingApproval
from vsm.queen.rules import Anomaly, candidates


async def apply_rules(
    journal: PolicyJournal,
    vsm_id: str,
    anomaly: Anomaly,
    cause: Envelope[Any] | None,
    *,
    intervention_id: str | None = None,
    causation: list[str] | None = None,
) -> tuple[PolicyRecord | None, list[str]]:
    """The first rules candidate the store admits (applied), and why the others were not."""
    current: dict[str, PolicyRecord] = {r.policy_type: r for r in journal.store.latest_of(vsm_id)}
    refused: list[str] = []
    for candidate in candidates(anomaly, current):
        try:
            record = await journal.adopt(
                vsm_id,
                candidate.policy_type,
                candidate.document,
                source="rules",
                reason=candidate.rationale,
                cause=cause,
                intervention_id=intervention_id,
                causation=causation,
            )
        except AwaitingApproval as held:  # decided, but a person has the last word
            return None, [*refused, f"rules {candidate.policy_type}: {held.message}"]
        except PolicyRejected as rejected:
            refused.extend(f"rules {candidate.policy_type}: {r}" for r in rejected.reasons)
        else:
            return record, refused
    return None, refused


async def llm_policy(
    journal: PolicyJournal,
    proposer: LlmProposer,
    vsm_id: str,
    anomaly: Anomaly,
    cause: Envelope[Any],
) -> PolicyRecord:
    """Ask the LLM and adopt its proposal; `LlmFailed` (with reasons) when it cannot be."""
    identity = journal.store.identity(vsm_id)
    raw = await proposer.propose(
        anomaly,
        journal.store.latest_of(vsm_id),
        identity.model_dump(mode="json") if identity else None,
        vsm_id,
    )
    policy = raw.get("policy")
    if not isinstance(policy, dict) or not isinstance(policy.get("policy_type"), str):
        raise LlmFailed("invalid_output", "policy: an object with a policy_type is required")
    rationale = raw.get("rationale")
    try:
        return await journal.adopt(
            vsm_id,
            policy["policy_type"],
            policy,
            source=proposer.source,
            reason=rationale if isinstance(rationale, str) else "",
            cause=cause,
        )
    except AwaitingApproval:
        raise
    except PolicyRejected as rejected:
        refusals = ("invalid_against_identity", "identity_reserved")
        outcome = "refused" if rejected.code in refusals else "invalid_output"
        raise LlmFailed(outcome, rejected.message, rejected.reasons) from rejected


async def synthesise(
    journal: PolicyJournal,
    proposer: LlmProposer | None,
    vsm_id: str,
    anomaly: Anomaly,
    cause: Envelope[Any],
) -> SynthesisResult:
    if proposer is None:
        outcome, detail, reasons = "not_configured", "no ANTHROPIC_API_KEY: rules only", []
    else:
        try:
            record = await llm_policy(journal, proposer, vsm_id, anomaly, cause)
        except AwaitingApproval as held:  # the LLM's answer waits for a person: no fallback
            return SynthesisResult(
                applied=None,
                source=held.approval.source,
                llm_outcome="awaiting_approval",
                llm_detail=held.message,
                awaiting=held.approval,
            )
        except LlmFailed as failed:
            outcome, detail = failed.outcome, failed.detail
            reasons = failed.reasons
        else:
            return SynthesisResult(applied=record, source=record.source, llm_outcome="used")
    applied, refused = await apply_rules(journal, vsm_id, anomaly, cause)
    fallback = "fell back to the rules" if proposer is not None else "used the rules"
    return SynthesisResult(
        applied=applied,
        source="rules",
        llm_outcome=outcome,
        llm_detail=f"{detail}; {fallback}",
        rejected_reasons=[*reasons, *refused],
    )
