"""mcp-gateway settings: the shared ones (see vsm.kit.settings) with this service's defaults."""

from pydantic import AliasChoices, Field, SecretStr

from vsm.contract.operations import BULK_SPAWN_LIMIT, BULK_TERMINATE_LIMIT
from vsm.kit.settings import ServiceSettings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
CLUSTER_HOSTS = (
    "mcp-gateway",  # docker compose
    "vsm-mcp-gateway",  # the chart's Service, from its own namespace
    "vsm-mcp-gateway.vsm",
    "vsm-mcp-gateway.vsm.svc",
    "vsm-mcp-gateway.vsm.svc.cluster.local",
)
DEFAULT_HOSTS = (
    *(f"{host}:*" for host in LOCAL_HOSTS),
    *(name for host in CLUSTER_HOSTS for name in (host, f"{host}:*")),
)
"""Hosts the gateway answers by default: loopback and the in-cluster names of the chart (`vsm`)."""
DEFAULT_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


def renamed(name: str, old: str) -> AliasChoices:
    """The setting `name`, still read under its older name `old` (`name` wins when both are set)."""
    return AliasChoices(name, old)


class Settings(ServiceSettings):
    http_port: int = Field(default=8000, ge=0, le=65535)
    # Bearer tokens (see vsm.mcp_gateway.access): comma-separated lists, so one can rotate.
    # `MCP_AUTH_TOKEN` is one more operate token. With none at all, every route but the
    # probes answers 503: never open by accident.
    mcp_auth_token: SecretStr | None = None
    vsm_operate_tokens: SecretStr = SecretStr("")
    vsm_read_tokens: SecretStr = SecretStr("")
    # Which Host and Origin headers REST and MCP accept (DNS rebinding, cross-site requests).
    public_host: str = Field(
        default="", max_length=253, validation_alias=renamed("vsm_public_host", "mcp_public_host")
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_HOSTS),
        validation_alias=renamed("vsm_allowed_hosts", "mcp_allowed_hosts"),
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ORIGINS),
        validation_alias=renamed("vsm_allowed_origins", "mcp_allowed_origins"),
    )
    rest_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest REST request body; a larger one is refused with 413.",
    )
    rest_bulk_spawn_max: int = Field(
        default=1000,
        ge=1,
        le=BULK_SPAWN_LIMIT,
        description="Most agents one bulk spawn (`POST /api/vsm/agents:bulk`) may ask for.",
    )
    rest_bulk_spawn_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long a bulk spawn (or bulk terminate) waits for operations to spawn "
        "(or terminate) its agents (504 past it).",
    )
    rest_bulk_terminate_max: int = Field(
        default=1000,
        ge=1,
        le=BULK_TERMINATE_LIMIT,
        description="Most agents one bulk terminate (`POST /api/vsm/agents:bulk-terminate`) "
        "may name.",
    )
    rest_rate_limit: int = Field(
        default=1200,
        ge=1,
        le=1_000_000,
        description="REST requests a minute per caller (its token); past it, 429.",
    )
    dead_letter_watch_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="How often the dead-letter queues' counts are read into /metrics.",
    )
    mcp_max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    mcp_rate_limit: int = Field(default=120, ge=1, le=100_000)  # requests/minute per client
    mcp_max_result_chars: int = Field(default=100_000, ge=256, le=10_000_000)
    # The console's sign-in lasts this long, then the token is asked for again.
    console_session_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
