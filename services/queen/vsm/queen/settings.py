"""queen settings: the shared ones (see vsm.kit.settings) plus S5's own; see the README table."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from vsm.contract.recursion import MAX_CHILDREN, MAX_DEPTH
from vsm.kit.llm import LlmSettings


class Settings(LlmSettings):
    http_port: int = Field(default=8005, ge=0, le=65535)

    algedonic_half_life_s: float = Field(default=60.0, gt=0, le=86_400)
    pain_threshold: float = Field(default=0.7, gt=0, le=1)
    pain_resolved_below: float = Field(default=0.3, ge=0, lt=1)
    pain_window: int = Field(default=5, ge=1, le=100)
    escalation_deadline_s: float = Field(default=120.0, gt=0, le=86_400)
    escalation_max_levels: int = Field(default=3, ge=1, le=10)
    monitor_interval_s: float = Field(default=0.5, gt=0, le=60)
    viability_freshness_s: float = Field(default=300.0, gt=0, le=86_400)
    viability_threshold: float = Field(default=0.6, gt=0, lt=1)
    meta_report_interval_s: float = Field(default=5.0, gt=0, le=3600)
    approval_max_pending: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Decisions held for a person at once; more are refused.",
    )
    # Quotas (README, "Quotas"): what S5 refuses with `quota_exceeded` (409) or
    # `invalid_policy` (422).
    meta_max_depth: int = Field(
        default=MAX_DEPTH, ge=1, le=MAX_DEPTH, description="Deepest level of a meta-system."
    )
    meta_max_children: int = Field(
        default=MAX_CHILDREN, ge=1, le=1000, description="Child viable systems per parent."
    )
    meta_max_total: int = Field(
        default=100, ge=1, le=100_000, description="Meta-systems in the whole tree."
    )
    structure_idle_s: float = Field(
        default=600.0,
        gt=0,
        le=604_800,
        description="A child grown for a part of the work that did no S1 work for this long "
        "is proposed for retirement, its work returning to the parent.",
    )
    structure_max_per_hour: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Children a viable system may grow for variety overload per sliding hour.",
    )
    policy_max_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest policy or identity document (its JSON), in bytes.",
    )
    policy_versions_kept: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Versions of each policy kept (and shown, diffed); older ones are "
        "forgotten. Every version kept is in each snapshot of the policy log.",
    )
    parent_namespace: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$|^$",
        description="For a child deployed as its own release: the parent's VSM_NAMESPACE.",
    )

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    journal_replay_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="How long reading S5's journal (its interventions and approvals) back at "
        "start-up may take.",
    )

    @field_validator("anthropic_api_key", "anthropic_base_url", "parent_namespace", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _hysteresis(self) -> Settings:
        if self.pain_resolved_below >= self.pain_threshold:
            raise ValueError("PAIN_RESOLVED_BELOW must be lower than PAIN_THRESHOLD (hysteresis)")
        return self
