"""mcp-gateway settings: the shared ones (see vsm.kit.settings) with this service's defaults."""

from pydantic import Field, SecretStr

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
"""Hosts MCP answers by default: loopback and the in-cluster names of the chart (`vsm`)."""


class Settings(ServiceSettings):
    http_port: int = Field(default=8000, ge=0, le=65535)
    # MCP at /mcp. Without a token the MCP endpoint answers 503: never open by accident.
    mcp_auth_token: SecretStr | None = None
    mcp_public_host: str = Field(default="", max_length=253)
    mcp_allowed_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_HOSTS))
    mcp_allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    )
    mcp_max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    mcp_rate_limit: int = Field(default=120, ge=1, le=100_000)  # requests/minute per client
    mcp_max_result_chars: int = Field(default=100_000, ge=256, le=10_000_000)
    # Read-scope tokens (JSON list): they see everything and change nothing.
    vsm_read_tokens: list[SecretStr] = Field(default_factory=list)
    # The console's sign-in lasts this long, then the token is asked for again.
    console_session_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
