"""The seven services as processes, as tests/integration starts them, with a readiness
deadline for a shared machine: seven interpreters importing at once on two busy cores can
take more than the integration suite's minute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.localrun import LocalSystem
from tests.support.system import launch, shut_down

READY_DEADLINE_S = 180


@contextmanager
def running_system(amqp_url: str, log_dir: Path, **env: str) -> Iterator[LocalSystem]:
    """All seven services on `amqp_url` under a namespace of their own, stopped and cleaned
    up afterwards (stopped first, so that each flushes what it exports on exit)."""
    system = launch(amqp_url, log_dir, ready_within_s=READY_DEADLINE_S, **env)
    try:
        yield system
    finally:
        asyncio.run(shut_down(system, amqp_url))
