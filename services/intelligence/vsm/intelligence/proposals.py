"""Adaptation proposals: S4's answer to S5's "how should we adapt?", with its rationale.

The proposal's policy is an `adaptation` document of S5's policy schema, so S5 validates it
like any other. The kind (the policy's mode) follows from what S4 measures, in this order:
  defensive        - pain is severe (>= 0.7) or readiness is low (< 0.4): protect the core
                     first, throttle S1 load until the pain subsides;
  transformational - the environment's variety calls for a meta-system: change structure;
  incremental      - otherwise: a small step in the direction of the trigger.
Confidence grows with the evidence S4 holds (the meta-system need's confidence) and readiness.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

from vsm.contract.adaptation import AdaptationProposal, AdaptationRequest
from vsm.contract.intelligence import MetaSystemNeed
from vsm.contract.policy import AdaptationPolicy

NAME = re.compile(r"[A-Za-z0-9_.:/*-]{1,128}")
SEVERE_PAIN = 0.7
LOW_READINESS = 0.4
Kind = Literal["incremental", "transformational", "defensive"]


def choose_kind(pain_level: float, readiness: float, need: MetaSystemNeed) -> Kind:
    if pain_level >= SEVERE_PAIN or readiness < LOW_READINESS:
        return "defensive"
    if need.recommended:
        return "transformational"
    return "incremental"


REVIEW_AFTER_S: dict[str, float] = {"defensive": 300, "transformational": 3600, "incremental": 900}


def actions(kind: Kind, request: AdaptationRequest, need: MetaSystemNeed) -> list[str]:
    """What to do, concretely enough for S3 (or a person) to carry out."""
    trigger = request.trigger
    if kind == "defensive":
        load = round(max(0.2, 1 - request.pain_level * 0.6) * 100)
        return [
            f"throttle S1 intake to {load}% of its current rate while pain stays above 0.3",
            f"hold non-essential work touched by {trigger!r}",
            "keep the algedonic channel and S3* audits at full capacity",
        ]
    if kind == "transformational":
        focus = ", ".join(list(need.variety.top_types)[:5]) or trigger
        return [
            f"spawn a meta-system (child viable system) to absorb the variety of: {focus}",
            "delegate its S3-S4-S5 decisions to the child; alerts flow up, policy flows down",
        ]
    return [
        f"adjust capacity for {trigger!r} by 10% in the direction that relieves it",
        "watch the series behind the trigger for recurrence until the review",
    ]


def policy_for(
    kind: Kind, request: AdaptationRequest, need: MetaSystemNeed, why: str
) -> AdaptationPolicy:
    """The policy S5 adopts if it accepts: an `adaptation` document of S5's own schema."""
    named = [t for t in need.variety.top_types if NAME.fullmatch(t)][:5]
    return AdaptationPolicy(
        policy_type="adaptation",
        mode=kind,
        actions=[a[:1024] for a in actions(kind, request, need)],
        rationale=why[:1024],
        review_after_s=REVIEW_AFTER_S[kind],
        overloading=named if kind == "transformational" else [],
    )


def rationale(
    kind: Kind, request: AdaptationRequest, readiness: float, need: MetaSystemNeed
) -> str:
    head = {
        "defensive": (
            f"pain {request.pain_level:.2f} or readiness {readiness:.2f} leaves no room to "
            "experiment: protect the core and shed load until the pain subsides"
        ),
        "transformational": (
            f"meta-system need {need.score:.2f} >= {need.threshold:.2f}: the environment's "
            "variety exceeds what the present structure absorbs; add a level of recursion"
        ),
        "incremental": (
            f"pain {request.pain_level:.2f}, readiness {readiness:.2f} and meta-system need "
            f"{need.score:.2f} call for a small correction, not a change of structure"
        ),
    }[kind]
    return f"{kind} adaptation to {request.trigger!r}: {head}. " + " ".join(need.reasons)


def overloading(need: MetaSystemNeed) -> dict[str, object]:
    """The part of the work whose variety weighs most: its busiest event types (whose names
    carry the agent type or command: `s1.performance.<type>`, `s1.result.<command>.<status>`)
    and sources (`operations/<agent>`), for a structural change to name what it moves."""
    return {
        "event_types": list(need.variety.top_types)[:5],
        "sources": list(need.variety.top_sources)[:5],
        "score": need.score,
        "threshold": need.threshold,
    }


def propose(
    request: AdaptationRequest,
    readiness: float,
    readiness_factors: dict[str, float],
    need: MetaSystemNeed,
) -> AdaptationProposal:
    kind = choose_kind(request.pain_level, readiness, need)
    why = rationale(kind, request, readiness, need)
    policy = policy_for(kind, request, need, why)
    return AdaptationProposal(
        proposal_id=str(uuid.uuid4()),
        kind=kind,
        rationale=why[:4096],
        policy_type=policy.policy_type,
        policy=policy.model_dump(mode="json"),
        confidence=round(need.confidence * (0.5 + 0.5 * readiness), 4),
        request_id=request.intervention_id,
        evidence={
            "pain_level": request.pain_level,
            "readiness": readiness,
            "readiness_factors": readiness_factors,
            "meta_system_need": {"score": need.score, "factors": need.factors},
            "variety": need.variety.model_dump(),
            "overloading": overloading(need),
        },
    )
