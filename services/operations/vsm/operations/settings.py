"""operations settings: the shared ones (see vsm.kit.settings) with this service's own."""

from pydantic import Field, SecretStr

from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8001, ge=0, le=65535)
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
        description="An agent whose report has not changed sends it again after this long.",
    )
    registry_replay_timeout_s: float = Field(default=30.0, gt=0, le=600)
