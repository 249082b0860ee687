"""Fault tests: real broker nodes, real service processes, and figures printed for the record.

Every fault test prints one line of figures (`FAULT <name>: in_flight=.. processed=.. lost=..
duplicates=..`) straight to the terminal, so `make test` shows them whether or not a test
fails. A test that kills or restarts a broker uses a node of its own (`own_node`), or a
cluster of its own (`PrivateCluster`); the others use the session's broker. What the tests
share besides these fixtures is in `tests.support.faults`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.faults import Report
from tests.support.rabbitmq import PrivateRabbitMQ


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault: a fault test (slow; `make test` runs it)")


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print a fault's figures to the terminal, uncaptured: `report("name", lost=0, ...)`."""

    def write(fault: str, **figures: Any) -> None:
        line = " ".join(f"{name}={value}" for name, value in figures.items())
        with capsys.disabled():
            print(f"\nFAULT {fault}: {line}", flush=True)

    return write


@pytest.fixture(scope="module")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of this module's own, to kill and restart; its logs are kept."""
    with PrivateRabbitMQ() as node:
        yield node
        if node.directory is not None:
            kept = tmp_path_factory.mktemp("rabbitmq-logs")
            shutil.copytree(node.directory / "log", kept, dirs_exist_ok=True)
