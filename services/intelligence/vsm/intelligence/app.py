"""Wiring: Settings -> Runtime (broker, bus, heartbeat) -> System 4, amplifier -> HTTP app."""

from litestar import Litestar

from vsm.intelligence import handlers
from vsm.intelligence.amplifier import Amplifier, create_client
from vsm.intelligence.anomaly import DetectorParams
from vsm.intelligence.environment import Environment
from vsm.intelligence.meta_system import NeedParams
from vsm.intelligence.outlets import Outlets
from vsm.intelligence.settings import Settings
from vsm.intelligence.system4 import System4
from vsm.intelligence.variety import EventWindow
from vsm.kit.runtime import Runtime
from vsm.kit.schedule import Every

SERVICE = "intelligence"


def build_system4(settings: Settings) -> System4:
    detector = DetectorParams(
        alpha=settings.anomaly_alpha,
        threshold=settings.anomaly_threshold,
        warmup=settings.anomaly_warmup,
    )
    return System4(
        env=Environment(detector=detector, window=EventWindow(window_s=settings.variety_window_s)),
        need_params=NeedParams(threshold=settings.meta_system_threshold),
    )


def create_app(settings: Settings) -> Litestar:
    runtime = Runtime(SERVICE, settings)
    amplifier = Amplifier(
        None, model=settings.anthropic_model, max_pending=settings.llm_max_pending
    )

    async def open_llm() -> None:
        """The Anthropic client exists only when configured, and only once the service starts."""
        if settings.anthropic_api_key is not None and settings.llm_configured:
            amplifier.client = create_client(
                settings.anthropic_api_key.get_secret_value(),
                settings.anthropic_base_url,
                settings.llm_timeout_s,
                settings.llm_max_retries,
            )

    s4 = build_system4(settings)
    periodic = handlers.register(runtime.bus, s4, Outlets(runtime.bus, amplifier))
    schedules = (
        Every("scheduled-scan", settings.scan_interval_s, periodic.scan),
        Every("readiness-report", settings.readiness_interval_s, periodic.readiness),
    )
    runtime.on_start(open_llm)
    for schedule in schedules:
        runtime.on_start(schedule.start)
        runtime.on_stop(schedule.stop)
    runtime.on_stop(amplifier.close)
    runtime.health.add_details(amplifier.details)
    return runtime.http_app()
