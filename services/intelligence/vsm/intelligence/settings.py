"""intelligence settings: the shared ones (see vsm.kit.settings) plus S4's own."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from vsm.contract.rules import MAX_RULES, Limits, Rule, RuleDeclaration, compile_rules
from vsm.intelligence.scaling import ScaleParams
from vsm.intelligence.sources import SourceConfig, vocabulary
from vsm.intelligence.structure import StructureParams
from vsm.kit.egress import Blocked, EgressPolicy
from vsm.kit.llm import LlmSettings

MAX_SOURCES = 32


class Settings(LlmSettings):
    http_port: int = Field(default=8004, ge=0, le=65535)

    scan_interval_s: float = Field(default=30.0, gt=0, le=86_400, alias="SCAN_INTERVAL")
    readiness_interval_s: float = Field(default=30.0, gt=0, le=86_400, alias="READINESS_INTERVAL")
    variety_window_s: float = Field(default=60.0, gt=0, le=86_400)
    anomaly_alpha: float = Field(default=0.1, gt=0, lt=1)
    anomaly_threshold: float = Field(default=4.0, gt=0)
    anomaly_warmup: int = Field(default=10, ge=2, le=10_000)
    meta_system_threshold: float = Field(default=0.6, ge=0, le=1)
    scale_queued_per_agent: float = Field(default=4.0, gt=0, le=100_000)
    scale_sustain_s: float = Field(default=30.0, gt=0, le=86_400)
    scale_calm_s: float = Field(default=120.0, gt=0, le=86_400)
    scale_max_step: int = Field(default=4, ge=1, le=100)
    """Expansive adaptation (README): work waiting for an agent type above
    SCALE_QUEUED_PER_AGENT per agent for SCALE_SUSTAIN_S proposes up to SCALE_MAX_STEP more
    agents of it; nothing waiting for SCALE_CALM_S proposes the count it started from."""
    structure_sustain_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="The meta-system need at or above META_SYSTEM_THRESHOLD for this long "
        "proposes handing the busiest agent type to a child viable system (once per episode).",
    )
    series_per_system: int = Field(default=2_000, ge=10, le=100_000)
    """Series watched per viable system; the least recently fed is evicted beyond."""

    # Rules (docs/rules.md): the standing rules every viable system's S4 judges, as a JSON
    # list of {name, when, then}, and the bounds on what any rule may cost.
    s4_rules: list[RuleDeclaration] = Field(default_factory=list, max_length=MAX_RULES)
    rule_max_window_s: float = Field(default=3600.0, ge=1, le=86_400, alias="RULE_MAX_WINDOW")
    rule_max_groups: int = Field(default=100, ge=1, le=10_000)
    rule_tick_s: float = Field(default=1.0, gt=0, le=60, alias="RULE_TICK")
    journal_replay_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="How long reading the service's journal back at start-up may take.",
    )

    # Outside sources (S4_SOURCES, a JSON list) and where S4 may reach: the same names and
    # meaning as operations' (README, "Outbound HTTP"). Empty URLs: S4 calls nothing outside.
    s4_sources: list[SourceConfig] = Field(default_factory=list, max_length=MAX_SOURCES)
    egress_allowed_urls: list[str] = Field(default_factory=list, max_length=1000)
    egress_allowed_private: list[str] = Field(default_factory=list, max_length=1000)
    egress_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=768 * 1024)

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-haiku-4-5"
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_pending: int = Field(default=8, ge=1, le=1000)
    """Explanations in flight at once; alerts beyond this go unexplained rather than queue up."""

    @model_validator(mode="after")
    def _sources_are_allowed_and_rules_compile(self) -> Self:
        policy = self.egress_policy()
        names: set[str] = set()
        for source in self.s4_sources:
            if source.name in names:
                raise ValueError(f"S4_SOURCES: the source name {source.name!r} is given twice")
            names.add(source.name)
            try:
                policy.permit(str(source.url))
            except Blocked as refused:
                raise ValueError(f"S4_SOURCES: {source.name}: {refused.message}") from refused
        self.standing_rules()
        return self

    @property
    def scale_params(self) -> ScaleParams:
        return ScaleParams(
            queued_per_agent=self.scale_queued_per_agent,
            sustain_s=self.scale_sustain_s,
            calm_s=self.scale_calm_s,
            max_step=self.scale_max_step,
        )

    @property
    def structure_params(self) -> StructureParams:
        return StructureParams(sustain_s=self.structure_sustain_s)

    @property
    def llm_configured(self) -> bool:
        return self.anthropic_api_key is not None and bool(
            self.anthropic_api_key.get_secret_value()
        )

    def egress_policy(self) -> EgressPolicy:
        """The operator's egress policy (`ValueError` naming the setting and the bad entry)."""
        return EgressPolicy.parse(
            self.egress_allowed_urls, self.egress_allowed_private, self.egress_max_body_bytes
        )

    def rule_limits(self) -> Limits:
        return Limits(max_window_s=self.rule_max_window_s, max_groups=self.rule_max_groups)

    def standing_rules(self) -> list[Rule]:
        """S4_RULES compiled; `ValidationError` at `S4_RULES.<i>.<when|then>` with the line
        and column of the first problem in each refused rule."""
        return compile_rules(
            self.s4_rules,
            self.rule_limits(),
            vocabulary(list(self.s4_sources)),
            at=("S4_RULES",),
        )
