"""intelligence settings: the shared ones (see vsm.kit.settings) plus S4's own."""

from pydantic import Field, SecretStr

from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8004, ge=0, le=65535)

    scan_interval_s: float = Field(default=30.0, gt=0, le=86_400, alias="SCAN_INTERVAL")
    readiness_interval_s: float = Field(default=30.0, gt=0, le=86_400, alias="READINESS_INTERVAL")
    variety_window_s: float = Field(default=60.0, gt=0, le=86_400)
    anomaly_alpha: float = Field(default=0.1, gt=0, lt=1)
    anomaly_threshold: float = Field(default=4.0, gt=0)
    anomaly_warmup: int = Field(default=10, ge=2, le=10_000)
    meta_system_threshold: float = Field(default=0.6, ge=0, le=1)

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-haiku-4-5"
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_pending: int = Field(default=8, ge=1, le=1000)
    """Explanations in flight at once; alerts beyond this go unexplained rather than queue up."""

    @property
    def llm_configured(self) -> bool:
        return self.anthropic_api_key is not None and bool(
            self.anthropic_api_key.get_secret_value()
        )
