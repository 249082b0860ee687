"""coordinator settings: the shared ones (see vsm.kit.settings) plus S2's own."""

from pydantic import Field

from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8002, ge=0, le=65535)

    starvation_s: float = Field(default=1.0, gt=0, le=3600)
    """An item waiting at the front of its lane longer than this is served first (aging)."""
    work_prefetch: int = Field(default=10_000, ge=1, le=65_535)
    """The most work items S2 holds (unacknowledged) at once."""
    dispatch_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """How long a dispatched command may take before its slot is given back."""
    registry_retry_s: float = Field(default=1.0, gt=0, le=60)
    journal_replay_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="How long reading the service's journal back at start-up may take.",
    )

    oscillation_window_s: float = Field(default=60.0, gt=0, le=86_400)
    oscillation_max_reversals: int = Field(default=3, ge=1, le=1000)
    damping_cooldown_s: float = Field(default=30.0, gt=0, le=86_400)
    oscillation_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between looks at each viable system's `OscillationIndex` and `QueuePressure`
    (reported when they changed, or while work waits or runs)."""
    oscillation_refresh_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="A system's oscillation index and queue pressure are reported again after "
        "this many seconds even when unchanged (unset: 12 oscillation intervals, 60 s; S5 "
        "counts a reading older than its freshness as unknown).",
    )

    note_rate_per_s: float = Field(default=10.0, gt=0, le=10_000)
    """Coordination notes per second allowed from one S1 unit to another."""
