"""Fixtures shared by every test: a real RabbitMQ broker and namespaces that never collide."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.cleanup import delete_namespace, new_namespace
from tests.support.probe import Probe, open_probe
from tests.support.rabbitmq import rabbitmq_url


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """`AMQP_URL` when given, else a testcontainers broker, else a private node started here."""
    with rabbitmq_url() as url:
        yield url


@pytest.fixture
async def namespace(amqp_url: str) -> AsyncIterator[str]:
    """A namespace of this test's own; everything declared under it is deleted afterwards."""
    ns = new_namespace()
    yield ns
    await delete_namespace(amqp_url, ns)


@pytest.fixture
async def probe(amqp_url: str, namespace: str) -> AsyncIterator[Probe]:
    """A bare client on the bus (no service behind it) to publish, request and read queues."""
    async with open_probe(amqp_url, namespace) as client:
        yield client


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"
