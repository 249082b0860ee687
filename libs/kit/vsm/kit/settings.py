"""Settings every service shares; each service subclasses it and builds it once in `__main__`."""

from __future__ import annotations

import os
import socket
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vsm.contract.envelope import VsmId
from vsm.contract.topology import DeadLetterCap
from vsm.kit.addresses import broker_urls
from vsm.kit.signing import Keyring, parse_keyring

__all__ = ["LOG_SKIP", "ServiceSettings"]

LOG_SKIP = r"^\s*([a-z0-9][a-z0-9.-]*@\d+\s*(,\s*[a-z0-9][a-z0-9.-]*@\d+\s*)*)?$"
"""`vsm.system5.policies@17, vsm.operations.registry@4`: a log's canonical name, an offset."""


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(BaseSettings):
    """Read from the environment (names in upper case, e.g. `AMQP_URL`), then from `.env` in
    the working directory for what the environment does not set; see the README table."""

    # Errors name the setting, never its value: AMQP_URL holds the broker password.
    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, hide_input_in_errors=True, env_file=".env"
    )

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"  # or a cluster's, comma-separated
    vsm_namespace: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9-]{0,30})?$")
    vsm_id: VsmId = "root"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # A second port serving only `GET /metrics`, for a scraper inside the cluster (unset: none).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Seconds between heartbeats. They feed S5's board and S4's sightings, which count a
    # sender down after 2.5 of ITS intervals; operations beats faster (placement).
    health_interval: float = Field(default=10.0, gt=0, le=60)
    prefetch_count: int = Field(default=64, ge=1, le=10_000)
    request_timeout_s: float = Field(default=5.0, gt=0, le=300)
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=300)
    # Deprecated (OTEL_TRACES_EXPORTER instead): spans without an exporter, trace ids in logs.
    tracing: bool = False
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    instance_id: str = Field(default_factory=_instance_id)
    # Message security: `kid1:base64secret,kid0:base64secret` (the first signs, all verify);
    # empty, messages are neither signed nor checked. With keys, the replay window applies.
    vsm_signing_keys: SecretStr = SecretStr("")
    vsm_replay_window_s: float = Field(default=300.0, gt=0, le=86_400)
    vsm_max_clock_skew_s: float = Field(default=30.0, ge=0, le=600)
    # The event logs: keys retired from live traffic that still verify the logs' entries;
    # whether unsigned entries older than the log's first signed one are read; entries the
    # operator disowns (`<stream>@<offset>,...`). See `vsm.kit.eventlog`.
    vsm_log_keys: SecretStr = SecretStr("")
    vsm_log_unsigned_history: Literal["refuse", "accept"] = "refuse"
    vsm_log_skip: str = Field(default="", pattern=LOG_SKIP)
    # Every dead-letter queue's cap: past it the broker refuses new dead letters
    # (`reject-publish`) rather than filling its disk. Set the same in every service (the
    # queue's arguments); an existing queue keeps its own (README, "Dead-letter queues").
    vsm_dead_letter_max_messages: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Messages a dead-letter queue holds."
    )
    vsm_dead_letter_max_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1024 * 1024,
        le=64 * 1024**3,
        description="Bytes of message bodies a dead-letter queue holds.",
    )

    # The logs of changes with snapshots (S5's policy log, S1's registry log): their retention,
    # declared on the streams (set the same in every service; an existing stream keeps its
    # own: README, "Logs and snapshots"), and how often a writer snapshots the live state.
    vsm_log_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=16 * 1024 * 1024,
        le=1024**4,
        description="Bytes a log keeps (`x-max-length-bytes`): older segments are dropped.",
    )
    vsm_log_max_age: str = Field(
        default="",
        pattern=r"^([1-9][0-9]{0,5}[YMDhms])?$",
        description="Age past which a log's segments are dropped (`x-max-age`, e.g. `30D`); "
        "empty: never by age. Set it only well above `VSM_LOG_SNAPSHOT_INTERVAL_S`.",
    )
    vsm_log_segment_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024**3,
        description="A log's segment size (`x-stream-max-segment-size-bytes`): retention "
        "drops whole segments.",
    )
    vsm_log_snapshot_every: int = Field(
        default=1000,
        ge=10,
        le=1_000_000,
        description="Log entries after which the writer snapshots the live state.",
    )
    vsm_log_snapshot_interval_s: float = Field(
        default=3600.0,
        ge=1,
        le=30 * 86_400,
        description="Seconds after which the writer snapshots a changed live state anyway.",
    )

    @field_validator("amqp_url")
    @classmethod
    def _broker_urls(cls, value: str) -> str:
        broker_urls(value)
        return value

    @model_validator(mode="after")
    def _last_snapshot_kept(self) -> Self:
        # Retention drops whole segments and keeps at least `max - segment` bytes: room for
        # many snapshot intervals (README, "Logs and snapshots").
        if self.vsm_log_segment_bytes * 4 > self.vsm_log_max_bytes:
            raise ValueError("VSM_LOG_SEGMENT_BYTES must be at most a quarter of VSM_LOG_MAX_BYTES")
        return self

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> Self:
        if self.metrics_port is not None and self.metrics_port == self.http_port:
            raise ValueError("METRICS_PORT must differ from HTTP_PORT")
        return self

    def dead_letter_cap(self) -> DeadLetterCap:
        return DeadLetterCap(self.vsm_dead_letter_max_messages, self.vsm_dead_letter_max_bytes)

    def log_retention(self) -> dict[str, int | str]:
        """The arguments declared on the logs with snapshots (`topology.LOG_RETENTION`)."""
        retention: dict[str, int | str] = {
            "x-max-length-bytes": self.vsm_log_max_bytes,
            "x-stream-max-segment-size-bytes": self.vsm_log_segment_bytes,
        }
        if self.vsm_log_max_age:
            retention["x-max-age"] = self.vsm_log_max_age
        return retention

    def keyring(self) -> Keyring | None:
        """The signing keys (`ValueError` naming the bad one by position, never its text)."""
        return parse_keyring(self.vsm_signing_keys.get_secret_value())

    def log_keyring(self) -> Keyring | None:
        """What verifies the event logs: the signing keys, then the log-only keys."""
        log_keys = parse_keyring(self.vsm_log_keys.get_secret_value(), "log key")
        keyring = self.keyring()
        if keyring is None or log_keys is None:
            return keyring or log_keys
        return keyring.joined(log_keys)

    def log_skip(self) -> frozenset[str]:
        """The disowned log entries, `<stream>@<offset>` each."""
        return frozenset(entry.strip() for entry in self.vsm_log_skip.split(",") if entry.strip())
