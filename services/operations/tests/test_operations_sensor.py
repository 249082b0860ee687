"""The sensor: readings from this host or an HTTP endpoint the operator allows (listeners on
loopback here); pain once per breach."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.commands import perform
from tests.support.listener import Listener, Reply
from vsm.agent import AgentIdentity
from vsm.contract.operations import AgentInfo
from vsm.kit.egress import EgressPolicy, OnDemand, destination
from vsm.operations.agents.base import CommandFailed, Feel, Resources
from vsm.operations.agents.outbound import Outbound
from vsm.operations.agents.sdk import SdkBehaviour
from vsm.operations.agents.sensor import SENSOR, Sensor, SensorConfig
from vsm.operations.algedonics import Feeling


def hosted(config: SensorConfig, outbound: Outbound) -> SdkBehaviour:
    """A sensor as its host runs it (`start(feel, crash)`, `stop()`), lent `outbound`."""
    info = AgentInfo(
        agent_id="sensor-1",
        agent_type="sensor",
        config=config.model_dump(mode="json"),
        capabilities=list(SENSOR.capabilities),
        allocation=config.allocation,
        max_allocation=config.max_allocation,
        spawned_at=datetime.now(UTC),
    )
    resources = Resources(outbound=outbound, llm=None, llm_retry_deadline_s=0.0, agent=info)
    behaviour = SENSOR.build(config, resources)
    assert isinstance(behaviour, SdkBehaviour)
    return behaviour


async def execute(sensor: SdkBehaviour, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """The command as the runner does it, its refusal raised: on the sensor the host runs,
    or (not started) on one made for it."""
    agent = sensor.running.agent if sensor.running is not None else None
    if not isinstance(agent, Sensor):
        agent = Sensor(
            SensorConfig.model_validate(sensor.config), AgentIdentity("sensor-1", "sensor")
        )
        agent.borrow(sensor.resources)
    return await perform(agent, command, data)


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


async def outbound_to(url: str | None, max_body_bytes: int = 64 * 1024) -> Outbound:
    """The operator's word: `url` allowed, loopback included; None allows nothing."""
    policy = (
        EgressPolicy()
        if url is None
        else EgressPolicy.parse([url], [destination(url).endpoint], max_body_bytes)
    )
    return Outbound(OnDemand(policy, 5.0), policy)


@pytest.fixture
async def outbound(listener: Listener) -> AsyncIterator[Outbound]:
    made = await outbound_to(listener.url)
    yield made
    await made.http.aclose()


async def test_host_readings_have_load_and_disk() -> None:
    reading = await execute(hosted(SensorConfig(), await outbound_to(None)), "read", {})
    assert {"load1", "disk_used_fraction"} <= set(reading["values"])


async def test_a_breached_threshold_hurts_once_per_episode(
    listener: Listener, outbound: Outbound
) -> None:
    felt: list[Feeling] = []

    async def feel(feeling: Feeling) -> None:
        felt.append(feeling)

    async def crash(error: BaseException) -> None:
        raise AssertionError(error)

    config = SensorConfig(
        source="http",
        url=f"{listener.url}/metrics",
        interval_s=0.05,
        rules=[{"metric": "queue.depth", "above": 10}],
    )
    sensor = hosted(config, outbound)
    listener.replies.extend([Reply(body={"queue": {"depth": d}}) for d in (1, 50, 60, 70, 2, 80)])
    listener.default = Reply(body={"queue": {"depth": 80}})
    await sensor.start(feel, crash)
    await asyncio.sleep(0.6)
    await sensor.stop()
    assert [f.reason for f in felt] == ["threshold_breached", "threshold_breached"]
    assert felt[0].context == {"queue.depth": 50.0}
    history = await execute(sensor, "history", {"last": 3})
    assert len(history["readings"]) == 3


def test_an_http_sensor_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        SensorConfig(source="http")


async def test_an_http_source_the_operator_did_not_name_is_never_reached(
    listener: Listener,
) -> None:
    refused: list[tuple[str, str]] = []
    policy = EgressPolicy.parse([listener.url])  # listed, but loopback is not named
    outbound = Outbound(OnDemand(policy, 5.0), policy, lambda *r: refused.append(r))
    sensor = hosted(SensorConfig(source="http", url=f"{listener.url}/metrics"), outbound)
    with pytest.raises(CommandFailed) as failed:
        await execute(sensor, "read", {})
    await outbound.http.aclose()
    assert failed.value.code == "destination_not_allowed"
    assert listener.connections == 0
    assert refused == [("sensor", "private_address")]


async def test_an_oversized_reading_is_refused_not_half_read(listener: Listener) -> None:
    listener.default = Reply(body={"values": list(range(10_000))})
    outbound = await outbound_to(listener.url, max_body_bytes=1024)
    sensor = hosted(SensorConfig(source="http", url=f"{listener.url}/metrics"), outbound)
    with pytest.raises(CommandFailed) as failed:
        await execute(sensor, "read", {})
    await outbound.http.aclose()
    assert failed.value.code == "source_unavailable"
    assert "cut" in failed.value.message


def felt_by(felt: list[Feeling]) -> Feel:
    async def feel(feeling: Feeling) -> None:
        felt.append(feeling)

    return feel


async def test_a_compound_rule_hurts_once_when_both_readings_hold_for_its_duration(
    listener: Listener, outbound: Outbound
) -> None:
    felt: list[Feeling] = []
    config = SensorConfig(
        source="http",
        url=f"{listener.url}/metrics",
        interval_s=0.05,
        rules=[
            {
                "name": "hot-and-full",
                "when": "cpu > 0.8 and memory > 0.9 for 200ms",
                "then": "pain 0.8",
            }
        ],
    )
    sensor = hosted(config, outbound)
    listener.default = Reply(body={"cpu": 0.95, "memory": 0.5})  # only one condition holds
    await sensor.start(felt_by(felt), crash_loudly)
    await asyncio.sleep(0.6)
    assert felt == []
    listener.default = Reply(body={"cpu": 0.95, "memory": 0.97})
    await asyncio.sleep(0.8)
    await sensor.stop()
    [pain] = felt
    assert (pain.kind, pain.intensity, pain.reason) == ("pain", 0.8, "hot-and-full")
    assert pain.context == {"cpu": 0.95, "memory": 0.97}
    assert pain.episode == "sensor:hot-and-full:1"


async def test_a_silent_source_is_a_rule_too(listener: Listener, outbound: Outbound) -> None:
    felt: list[Feeling] = []
    config = SensorConfig(
        source="http",
        url=f"{listener.url}/metrics",
        interval_s=0.05,
        rules=[{"name": "silent", "when": "count(reading) over 1s == 0", "then": "pain 0.4"}],
    )
    listener.default = Reply(status=503)
    crashes: list[BaseException] = []

    async def crash(error: BaseException) -> None:
        crashes.append(error)

    sensor = hosted(config, outbound)
    await sensor.start(felt_by(felt), crash)
    await asyncio.sleep(2.5)
    await sensor.stop()
    assert [f.reason for f in felt] == ["silent"]
    assert crashes


async def crash_loudly(error: BaseException) -> None:
    raise AssertionError(error)


@pytest.mark.parametrize(
    ("config", "field", "says"),
    [
        (
            {"rules": [{"name": "r", "when": "load1 > 4 and cpu > 1", "then": "pain 0.5"}]},
            ("rules", 0, "when"),
            "line 1, column 15: unknown reading: a host sensor reads no 'cpu'",
        ),
        (
            {"rules": [{"name": "r", "when": "load1 >", "then": "pain 0.5"}]},
            ("rules", 0, "when"),
            "line 1, column 8: expected a value",
        ),
        (
            {"rules": [{"name": "r", "when": "avg(load1) over 2h > 4", "then": "pain 0.5"}]},
            ("rules", 0, "when"),
            "windows are bounded",
        ),
        (
            {"rules": [{"name": "r", "when": "load1 > 4", "then": "alert warning"}]},
            ("rules", 0, "then"),
            "here a rule can only pain or pleasure",
        ),
        ({"rules": [{"metric": "cpu", "above": 1}]}, ("rules", 0, "metric"), "reads no 'cpu'"),
    ],
)
def test_a_bad_rule_is_refused_at_its_field_line_and_column(
    config: dict[str, object], field: tuple[object, ...], says: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        SensorConfig.model_validate(config)
    [problem] = refused.value.errors()
    assert problem["loc"] == field
    assert says in problem["msg"]


def test_an_http_sensors_readings_are_not_known_in_advance() -> None:
    rule = {"name": "deep", "when": "`queue.0.depth` > 10", "then": "pain 0.5"}
    config = SensorConfig(source="http", url="http://example.com/", rules=[rule])
    assert [r.readings for r in config.compiled()] == [("queue.0.depth",)]
