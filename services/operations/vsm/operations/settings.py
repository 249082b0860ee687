"""operations settings: the shared ones (see vsm.kit.settings) with this service's own."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from vsm.contract.operations import REGISTRY_BATCH_LIMIT, TYPE_PARTITIONS
from vsm.kit.egress import EgressPolicy
from vsm.kit.llm import LlmSettings


class Settings(LlmSettings):
    http_port: int = Field(default=8001, ge=0, le=65535)
    # The replicas place partitions by each other's heartbeats (`placement_ttl_s` and
    # `placement_fresh_s` are multiples of it): shorter than the other services' 10 s.
    health_interval: float = Field(default=2.0, gt=0, le=60)
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    llm_request_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_retry_deadline_s: float = Field(
        default=20.0, gt=0, le=600, description="Give up retrying 429/529 after this long."
    )
    http_timeout_s: float = Field(default=10.0, gt=0, le=300)
    performance_interval_s: float = Field(default=10.0, gt=0, le=3600, alias="PERFORMANCE_INTERVAL")
    performance_refresh_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        alias="PERFORMANCE_REFRESH",
        description="An agent still at work whose report has not changed sends it again after "
        "this long; an idle agent sends nothing.",
    )
    agents_per_system: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Running agents a viable system may have; one more spawn is refused (409).",
    )
    s1_partitions: int = Field(
        default=16,
        ge=1,
        le=1024,
        alias="S1_PARTITIONS",
        description="Partition queues carrying the agents' commands (`vsm.s1.partition.<k>`), "
        "spread over the replicas; every replica must be given the same number.",
    )
    s1_type_partitions: int = Field(
        default=TYPE_PARTITIONS,
        ge=1,
        le=256,
        alias="S1_TYPE_PARTITIONS",
        description="Partition queues of each agent type that agent hosts offer "
        "(`vsm.s1.pool.<type>.<k>`): the most hosts sharing one type's agents; operations and "
        "every host must be given the same number.",
    )
    agent_type_entry_points: bool = Field(
        default=True,
        alias="AGENT_TYPE_ENTRY_POINTS",
        description="Run, beside the built-in types, the SDK agent types that installed "
        "packages publish through the `vsm.agent_types` entry points (a broken one is logged "
        "with its package and skipped).",
    )
    registry_replay_timeout_s: float = Field(default=30.0, gt=0, le=600)
    vsm_registry_batch: int = Field(
        default=REGISTRY_BATCH_LIMIT,
        ge=1,
        le=REGISTRY_BATCH_LIMIT,
        description="Most agents of one bulk spawn or terminate logged in one registry event "
        "(`AgentsSpawned`, `AgentsTerminated`); 1: one `AgentSpawned` or `AgentTerminated` "
        "per agent, what releases before batches read (set it while any of them still runs).",
    )
    # Outbound HTTP of api and sensor agents (README, "Outbound HTTP"): JSON lists. Empty
    # URLs: no agent calls outside. Private endpoints: exact `host:port`, e.g. `127.0.0.1:8007`.
    egress_allowed_urls: list[str] = Field(default_factory=list, max_length=1000)
    egress_allowed_private: list[str] = Field(default_factory=list, max_length=1000)
    egress_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=768 * 1024)

    @model_validator(mode="after")
    def _egress_entries_are_valid(self) -> Self:
        self.egress_policy()
        return self

    def egress_policy(self) -> EgressPolicy:
        """The operator's egress policy (`ValueError` naming the setting and the bad entry)."""
        return EgressPolicy.parse(
            self.egress_allowed_urls, self.egress_allowed_private, self.egress_max_body_bytes
        )
