"""One monitored system per test module: a RabbitMQ node with its Prometheus plugin, the
seven services on it, and a private Prometheus scraping them all every second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.localrun import LocalSystem
from tests.observability.broker import MonitoredRabbitMQ
from tests.observability.prometheus import PrivatePrometheus
from tests.observability.system import running_system
from tests.support.fake_anthropic import FakeAnthropic

# S5 fast enough that a pain burst opens, escalates and resolves an episode within the test.
QUICK_S5 = {
    "ALGEDONIC_HALF_LIFE_S": "2",
    "ESCALATION_DEADLINE_S": "1",
    "MONITOR_INTERVAL_S": "0.2",
    "PERFORMANCE_INTERVAL": "1",
}
BUDGET = {"BUDGET_USD_PER_DAY": "100"}
"""A daily LLM budget for every viable system, so that its headroom is charted."""


@pytest.fixture(scope="module")
def broker() -> Iterator[MonitoredRabbitMQ]:
    with MonitoredRabbitMQ() as node:
        yield node


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeAnthropic]:
    """The Messages API the LLM features call, so that their tokens and cost are charted."""
    with FakeAnthropic(default_reply="All agents are well.") as fake:
        yield fake


@pytest.fixture(scope="module")
def monitored_system(
    broker: MonitoredRabbitMQ, tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeAnthropic
) -> Iterator[LocalSystem]:
    logs = tmp_path_factory.mktemp("logs")
    with running_system(broker.url, logs, **QUICK_S5, **BUDGET, **fake_llm.env()) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(
    broker: MonitoredRabbitMQ, monitored_system: LocalSystem
) -> Iterator[PrivatePrometheus]:
    jobs = {name: [monitored_system.scrape_address(name)] for name in monitored_system.ports}
    jobs["rabbitmq"] = [broker.metrics_address]
    with PrivatePrometheus(jobs) as server:
        server.wait_scraping()
        yield server
