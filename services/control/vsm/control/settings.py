"""control settings: the shared ones (see vsm.kit.settings) plus S3's own; see the README."""

from pydantic import Field

from vsm.contract.control import Resources
from vsm.control.quotas import Deed
from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8003, ge=0, le=65535)

    budget_slots: int = Field(default=64, ge=0, le=100_000)
    budget_tokens_per_min: int = Field(default=200_000, ge=0, le=100_000_000)
    budget_memory_mb: int = Field(default=8192, ge=0, le=10_000_000)
    budget_usd_per_day: float | None = Field(default=None, ge=0, le=1_000_000)
    """A viable system's budget until someone sets it (`PUT /api/vsm/system/3/budget`); no
    USD per day by default: LLM spend is metered but not capped until a budget names it."""
    # A budget below these minimums is refused (`invalid_budget`, naming the field): a viable
    # system with no slot could run nothing.
    budget_min_slots: int = Field(
        default=1, ge=0, le=100_000, description="Fewest concurrency slots a budget may hold."
    )
    budget_min_tokens_per_min: int = Field(
        default=0, ge=0, le=100_000_000, description="Fewest LLM tokens a minute a budget may hold."
    )
    budget_min_memory_mb: int = Field(
        default=0, ge=0, le=10_000_000, description="Least memory (MB) a budget may hold."
    )
    agent_memory_mb: int = Field(default=128, ge=0, le=10_000_000)
    """Memory S3 books for an agent at spawn (S1 reports only its concurrency slots)."""

    headroom_interval_s: float = Field(default=5.0, gt=0, le=3600, alias="HEADROOM_INTERVAL")
    """How often S3 looks whether a system's headroom may have changed (and then reports it)."""
    headroom_refresh_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        alias="HEADROOM_REFRESH",
        description="A system's headroom is reported again after this many seconds even when "
        "nothing changed (unset: 12 headroom intervals, 60 s; S5 counts a reading older than "
        "its freshness as unknown).",
    )
    release_interval_s: float = Field(default=0.5, gt=0, le=60, alias="RELEASE_INTERVAL")
    """How often S3 applies what ended cool-downs held back and lifts expired throttles."""
    audit_interval_s: float = Field(default=300.0, gt=0, le=86_400, alias="AUDIT_INTERVAL")
    audit_jitter: float = Field(default=0.2, ge=0, lt=1)
    """Each sporadic audit comes at the interval plus or minus this share of it."""
    audit_sample: int = Field(default=3, ge=1, le=256)
    audit_timeout_s: float = Field(default=5.0, gt=0, le=60)
    registry_retry_s: float = Field(default=1.0, gt=0, le=60)
    journal_replay_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="How long reading the service's journal back at start-up may take.",
    )

    adaptation_spawns_per_hour: int = Field(default=20, ge=0, le=10_000)
    adaptation_retirements_per_hour: int = Field(default=20, ge=0, le=10_000)
    adaptation_policies_per_hour: int = Field(default=30, ge=0, le=10_000)
    """What adaptation may do per viable system and sliding hour: agents spawned, agents
    retired, adaptation policy versions carried out; beyond it a step is refused (reason
    `quota`, on the trail, raised to S5), so a flapping signal cannot make S1 thrash."""
    isolation_probe_s: float = Field(default=30.0, gt=0, le=86_400)
    """An isolated agent is readmitted on probation (one slot) after this, and for good
    after another such period without failing."""

    @property
    def adaptation_quotas(self) -> dict[Deed, int]:
        return {
            "spawns": self.adaptation_spawns_per_hour,
            "retirements": self.adaptation_retirements_per_hour,
            "policies": self.adaptation_policies_per_hour,
        }

    @property
    def budget_minimums(self) -> Resources:
        return Resources(
            concurrency_slots=self.budget_min_slots,
            llm_tokens_per_min=self.budget_min_tokens_per_min,
            memory_mb=self.budget_min_memory_mb,
        )

    @property
    def default_budget(self) -> Resources:
        return Resources(
            concurrency_slots=self.budget_slots,
            llm_tokens_per_min=self.budget_tokens_per_min,
            memory_mb=self.budget_memory_mb,
            llm_usd_per_day=self.budget_usd_per_day,
        )
