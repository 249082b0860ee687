"""The seven services as processes, as tests/integration starts them, with a readiness
deadline for a shared machine: seven interpreters importing at once on two busy cores can
take more than the integration suite's minute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import new_namespace
from scripts.localrun import SERVICES, LocalSystem
from tests.integration.conftest import HEALTH_INTERVAL_S, free_port, shut_down

READY_DEADLINE_S = 180


@contextmanager
def running_system(amqp_url: str, log_dir: Path, **env: str) -> Iterator[LocalSystem]:
    """All seven services on `amqp_url` under a namespace of their own, stopped and cleaned
    up afterwards (stopped first, so that each flushes what it exports on exit)."""
    system = LocalSystem(
        env={
            "AMQP_URL": amqp_url,
            "VSM_NAMESPACE": new_namespace(),
            "HEALTH_INTERVAL": str(HEALTH_INTERVAL_S),
            "LOG_FORMAT": "json",
            "TELEGRAM_BOT_TOKEN": "",
            **env,
        },
        log_dir=log_dir,
        ports={name: free_port() for name in SERVICES},
    )
    system.start()
    try:
        system.wait_ready(timeout=READY_DEADLINE_S)
        yield system
    finally:
        asyncio.run(shut_down(system, amqp_url))
