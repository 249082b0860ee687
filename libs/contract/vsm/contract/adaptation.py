"""S4 <-> S5: adaptation requested by S5 after an intervention, proposed by S4, readiness."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vsm.contract.message import Message

__all__ = [
    "ADAPTATION_KINDS",
    "ADAPTATION_REQUEST_KEY",
    "READINESS_KEY",
    "AdaptationAction",
    "AdaptationProposal",
    "AdaptationReadiness",
    "AdaptationRequest",
    "action_key",
    "alert_key",
    "proposal_key",
]

ADAPTATION_REQUEST_KEY = "adaptation.request"
ADAPTATION_KINDS = ("incremental", "defensive", "expansive", "transformational")
READINESS_KEY = "readiness"


def proposal_key(kind: str) -> str:
    """Routing key on `vsm.intelligence` for an adaptation proposal of `kind`."""
    return f"adaptation.proposal.{kind}"


def alert_key(severity: str) -> str:
    """Routing key on `vsm.intelligence` for an S4 alert of `severity`."""
    return f"alert.{severity}"


class AdaptationRequest(Message):
    """S5 asks S4 how the organisation should adapt to what caused an intervention."""

    TYPE: ClassVar[str] = "vsm.s4.adaptation.request.v1"

    intervention_id: str = Field(min_length=1, max_length=128)
    trigger: str = Field(min_length=1, max_length=64)
    pain_level: float = Field(ge=0.0, le=1.0)
    context: dict[str, Any] = Field(default_factory=dict)


class AdaptationProposal(Message):
    """S4's proposal; S5 accepts it (as a policy) or rejects it, with reasons."""

    TYPE: ClassVar[str] = "vsm.s4.adaptation.proposal.v1"

    proposal_id: str = Field(min_length=1, max_length=128)
    kind: Literal["incremental", "transformational", "defensive", "expansive"]
    rationale: str = Field(min_length=1, max_length=4096)
    policy_type: str = Field(min_length=1, max_length=32)
    policy: dict[str, Any]
    confidence: float = Field(ge=0.0, le=1.0)
    request_id: str | None = Field(default=None, max_length=128)
    evidence: dict[str, Any] = Field(default_factory=dict)


class AdaptationReadiness(Message):
    """How ready S4 judges the organisation to adapt (0..1), with the factors behind it."""

    TYPE: ClassVar[str] = "vsm.s4.readiness.v1"

    readiness: float = Field(ge=0.0, le=1.0)
    factors: dict[str, float] = Field(default_factory=dict)


def action_key(kind: str, outcome: str) -> str:
    """Routing key on `vsm.control` for an adaptation action S3 took (or could not take)."""
    return f"adaptation.{kind}.{outcome}"


ActionOutcome = Literal["done", "refused", "proposed"]


class AdaptationAction(Message):
    """One concrete step of an adaptation policy, with its owner, caused by the policy.

    S3 carries the policy out and says each step on `vsm.control` (key
    `adaptation.<kind>.<done|refused|proposed>`, on the causal trail): a step it could not
    take says why (`reason`, a stable code, and `detail`) and is raised to S5 as pain.
    """

    TYPE: ClassVar[str] = "vsm.s3.adaptation.action.v1"

    kind: Literal["incremental", "transformational", "defensive", "expansive"]
    action: Literal[
        "spawn", "retire", "isolate", "readmit", "shed", "resume", "reallocate", "meta_system"
    ]
    owner: Literal["S1", "S2", "S3", "S5"]
    target: str = Field(min_length=1, max_length=128)
    outcome: ActionOutcome
    reason: str = Field(default="", max_length=64)
    detail: str = Field(default="", max_length=1024)
    policy_version: int = Field(ge=1)
    agent_ids: list[str] = Field(default_factory=list, max_length=1000)
    request: dict[str, Any] = Field(
        default_factory=dict,
        description="The request this step makes of its owner (a meta-system spawn), if any.",
    )
