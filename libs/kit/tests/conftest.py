"""Fixtures of the kit's tests that talk to a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection to the test broker (its first address), closed afterwards."""
    connection = await aio_pika.connect_robust(amqp_url.split(",", maxsplit=1)[0])
    try:
        yield connection
    finally:
        await connection.close()
