"""The sensor: readings from this host or a local HTTP endpoint; pain once per breach."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from vsm.operations.agents.sensor import Sensor, SensorConfig
from vsm.operations.algedonics import Feeling

from .local_http import serve


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_host_readings_have_load_and_disk(http: httpx.AsyncClient) -> None:
    reading = await Sensor(SensorConfig(), http).execute("read", {})
    assert {"load1", "disk_used_fraction"} <= set(reading["values"])


async def test_a_breached_threshold_hurts_once_per_episode(http: httpx.AsyncClient) -> None:
    felt: list[Feeling] = []

    async def feel(feeling: Feeling) -> None:
        felt.append(feeling)

    async def crash(error: BaseException) -> None:
        raise AssertionError(error)

    with serve() as (url, script):
        config = SensorConfig(
            source="http",
            url=f"{url}/metrics",
            interval_s=0.05,
            rules=[{"metric": "queue.depth", "above": 10}],
        )
        sensor = Sensor(config, http)
        script.replies.extend([(200, {"queue": {"depth": d}}) for d in (1, 50, 60, 70, 2, 80)])
        script.default = (200, {"queue": {"depth": 80}})
        await sensor.start(feel, crash)
        await asyncio.sleep(0.6)
        await sensor.stop()
    assert [f.reason for f in felt] == ["threshold_breached", "threshold_breached"]
    assert felt[0].context == {"queue.depth": 50.0}
    history = await sensor.execute("history", {"last": 3})
    assert len(history["readings"]) == 3


def test_an_http_sensor_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        SensorConfig(source="http")
