"""Heartbeats at each service's own pace: operations' replicas place partitions by theirs
(every 2 s), the other services' only feed S5's board and S4's sightings (every 10 s); the
environment's `HEALTH_INTERVAL` still sets every service's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from vsm.control.settings import Settings as Control
from vsm.coordinator.settings import Settings as Coordinator
from vsm.intelligence.settings import Settings as Intelligence
from vsm.mcp_gateway.settings import Settings as Gateway
from vsm.operations.settings import Settings as Operations
from vsm.queen.settings import Settings as Queen
from vsm.telegram_gateway.settings import Settings as Telegram

BOARD_ONLY: list[type[BaseSettings]] = [
    Queen,
    Intelligence,
    Control,
    Coordinator,
    Gateway,
    Telegram,
]


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEALTH_INTERVAL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env


@pytest.mark.parametrize("settings", BOARD_ONLY, ids=lambda s: s.__module__.split(".")[1])
def test_services_that_only_feed_the_board_beat_every_10_s(settings: type[BaseSettings]) -> None:
    assert settings().health_interval == 10.0  # type: ignore[attr-defined]


def test_operations_beats_every_2_s_for_placement() -> None:
    assert Operations().health_interval == 2.0


@pytest.mark.parametrize("settings", [*BOARD_ONLY, Operations], ids=lambda s: s.__module__)
def test_the_environment_sets_every_services_interval(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_INTERVAL", "0.5")
    assert settings().health_interval == 0.5  # type: ignore[attr-defined]
