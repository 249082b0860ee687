"""The outside environment: an HTTP JSON source the operator names, polled through the egress
guard (listeners on loopback here); readings found by path, failures counted by kind."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import ValidationError

from tests.support.listener import Listener, Reply
from vsm.intelligence.polling import Outside
from vsm.intelligence.settings import Settings
from vsm.intelligence.sources import SourceConfig, extract, steps
from vsm.kit.egress import EgressPolicy, OnDemand, destination


def source(url: str, **readings: str) -> SourceConfig:
    paths = readings or {"temp": "$.current.temp", "first": "$.items[0].price"}
    return SourceConfig(name="weather", url=url, readings=paths, timeout_s=0.5)  # type: ignore[arg-type]


def test_json_paths() -> None:
    assert steps("$.current.temp") == ("current", "temp")
    assert steps("current.temp") == ("current", "temp")
    assert steps('$.items[0]["odd key"]') == ("items", 0, "odd key")
    assert steps("$[2]") == (2,)
    for bad in ("$", "$.", "$..a", "$.a[x]", "a b"):
        with pytest.raises(ValueError, match="JSON path"):
            steps(bad)


def test_readings_are_the_finite_numbers_found_by_path() -> None:
    weather = source("https://example.com/")
    assert extract(weather, b'{"current": {"temp": 21.5}, "items": [{"price": 3}]}') == {
        "weather.temp": 21.5,
        "weather.first": 3.0,
    }
    assert extract(weather, b'{"current": {"temp": "hot"}, "items": []}') == "no_reading"
    assert extract(weather, b'{"current": {"temp": true}}') == "no_reading"
    assert extract(weather, b"<html>") == "not_json"
    assert extract(weather, b"\xff\xfe") == "not_json"


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that takes connections and never answers (the kernel accepts them)."""
    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(8)
        yield f"http://127.0.0.1:{quiet.getsockname()[1]}"


def allowing(*urls: str) -> EgressPolicy:
    return EgressPolicy.parse(urls, [destination(u).endpoint for u in urls], 4096)


class Polled:
    def __init__(self) -> None:
        self.delivered: list[dict[str, float]] = []
        self.counted: list[tuple[str, str]] = []

    async def deliver(self, _: SourceConfig, readings: dict[str, float]) -> None:
        self.delivered.append(readings)

    def count(self, name: str, outcome: str) -> None:
        self.counted.append((name, outcome))


@pytest.fixture
async def polled(listener: Listener, silent: str) -> AsyncIterator[tuple[Outside, Polled]]:
    policy = allowing(f"{listener.url}/", f"{silent}/")
    seen = Polled()
    sources = [source(f"{listener.url}/now"), source(f"{silent}/now")]
    outside = Outside(sources, policy, OnDemand(policy, 5.0), seen.deliver, seen.count)
    yield outside, seen
    await outside.close()


async def test_a_poll_delivers_readings_and_every_failure_is_counted_and_skipped(
    polled: tuple[Outside, Polled], listener: Listener
) -> None:
    outside, seen = polled
    good, silent = outside.sources
    listener.replies.extend(
        [
            Reply(body={"current": {"temp": 19.0}, "items": [{"price": 2.5}]}),
            Reply(body=b"<html>garbage</html>"),
            Reply(status=503, body={"error": "down"}),
            Reply(body={"nothing": "here"}),
            Reply(body={"blob": "x" * 10_000}),
        ]
    )
    for _ in range(5):
        await outside.poll(good)
    await outside.poll(silent)
    assert seen.delivered == [{"weather.temp": 19.0, "weather.first": 2.5}]
    assert seen.counted == [
        ("weather", "ok"),
        ("weather", "not_json"),
        ("weather", "http_status"),
        ("weather", "no_reading"),
        ("weather", "not_json"),  # cut at the operator's cap
        ("weather", "timeout"),
    ]
    state = outside.states["weather"]
    assert (state.polls, state.failures, state.last_failure) == (6, 5, "timeout")
    assert state.last_readings == {"weather.temp": 19.0, "weather.first": 2.5}


async def test_a_source_the_operator_did_not_name_is_never_reached(listener: Listener) -> None:
    listed_not_named = EgressPolicy.parse([f"{listener.url}/"])  # loopback is private
    seen = Polled()
    weather = source(f"{listener.url}/now")
    outside = Outside(
        [weather], listed_not_named, OnDemand(listed_not_named, 5.0), seen.deliver, seen.count
    )
    await outside.poll(weather)
    await outside.close()
    assert seen.counted == [("weather", "refused")]
    assert listener.connections == 0


def test_start_up_refuses_a_source_outside_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = (
        '[{"name": "meta", "url": "http://169.254.169.254/latest/", "readings": {"x": "$.x"}}]'
    )
    monkeypatch.setenv("S4_SOURCES", sources)
    with pytest.raises(
        ValidationError, match=r"S4_SOURCES: meta: .* is outside EGRESS_ALLOWED_URLS"
    ):
        Settings()
    monkeypatch.setenv("EGRESS_ALLOWED_URLS", '["http://169.254.169.254/"]')
    with pytest.raises(
        ValidationError, match=r"EGRESS_ALLOWED_PRIVATE names 169\.254\.169\.254:80"
    ):
        Settings()
    monkeypatch.setenv("EGRESS_ALLOWED_PRIVATE", '["169.254.169.254:80"]')
    assert [s.name for s in Settings().s4_sources] == ["meta"]
