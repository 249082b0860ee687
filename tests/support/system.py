"""The seven services as processes on a real broker: how every suite launches a system, and
the fixtures of a module's shared running system."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.config import STARTUP_FAILURE

from scripts.localrun import SERVICES, LocalSystem
from tests.support.cleanup import delete_namespace, new_namespace
from tests.support.probe import Probe, open_probe
from tests.support.tokens import TOKEN_ENV, gateway_client

HEALTH_INTERVAL_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


READY_WITHIN_S = 180.0
"""Seven interpreters starting at once on a busy 2-core machine."""


def launch(
    amqp_url: str,
    log_dir: Path,
    *,
    ready_within_s: float = READY_WITHIN_S,
    services: Iterable[str] = SERVICES,
    **env: str,
) -> LocalSystem:
    """The seven services (or those named) as processes on `amqp_url`, under a namespace of
    their own, once every one is ready (the other suites' systems start here too). The gateway
    takes the tokens of tests.support.tokens and serves its metrics without one on a port of
    its own."""
    namespace = new_namespace()
    system = LocalSystem(
        env={
            "AMQP_URL": amqp_url,
            "VSM_NAMESPACE": namespace,
            "HEALTH_INTERVAL": str(HEALTH_INTERVAL_S),
            "LOG_FORMAT": "json",
            "TELEGRAM_BOT_TOKEN": "",
            "REST_RATE_LIMIT": "1000000",  # tests send thousands a minute; its own test sets it
            # operations runs the built-in types only (the workspace installs the examples'
            # package, whose entry points it would also run); the agent hosts' tests set it
            "AGENT_TYPE_ENTRY_POINTS": "false",
            **TOKEN_ENV,
            **env,
        },
        log_dir=log_dir,
        ports={name: free_port() for name in SERVICES},
        metrics_ports={"mcp-gateway": free_port()},
    )
    system.start(services)
    try:
        ready_or_restarted(system, ready_within_s)
    except Exception:
        system.stop()
        raise
    return system


class ServiceStartedAgain(UserWarning):
    """A service of a launched system failed its start-up once and was started again (shown in
    the run's warnings summary, not an error: pyproject's filterwarnings)."""


def ready_or_restarted(system: LocalSystem, ready_within_s: float) -> None:
    """Wait until every service is ready. A service whose start-up failed (uvicorn's exit 3:
    the lifespan raised) is started once more, as an orchestrator would restart it, with a
    warning that carries its log, so that the failure is seen in the run's summary; a second
    failure, or any other exit, fails the launch."""
    try:
        system.wait_ready(timeout=ready_within_s)
        return
    except RuntimeError:
        failed = [n for n, p in system.processes.items() if p.poll() == STARTUP_FAILURE]
        if not failed:
            raise
    for name in failed:
        warnings.warn(
            f"{name} failed to start and was started again; its log ended with:\n"
            f"{system.log_tail(name)}",
            ServiceStartedAgain,
            stacklevel=2,
        )
    system.start(failed)
    system.wait_ready(timeout=ready_within_s)


async def shut_down(system: LocalSystem, amqp_url: str) -> None:
    system.stop()
    await delete_namespace(amqp_url, system.env["VSM_NAMESPACE"])


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    """Extra environment for the module's system; a test module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, system_env: dict[str, str]
) -> Iterator[LocalSystem]:
    """All seven services, shared by the tests of one module (they must not break it)."""
    running = launch(amqp_url, tmp_path_factory.mktemp("logs"), **system_env)
    yield running
    asyncio.run(shut_down(running, amqp_url))


@pytest.fixture
async def system_probe(amqp_url: str, system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, system.env["VSM_NAMESPACE"]) as client:
        yield client


@pytest.fixture
async def gateway(system: LocalSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(system, timeout=10) as client:
        yield client
