"""The worker's deterministic commands and how it refuses bad data."""

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.commands import perform
from vsm.agent import AgentIdentity
from vsm.operations.agents.analysis import describe
from vsm.operations.agents.base import CommandFailed
from vsm.operations.agents.worker import Worker, WorkerConfig, checksum


def a_worker() -> Worker:
    return Worker(WorkerConfig(), AgentIdentity("worker-1", "worker"))


async def execute(worker: Worker, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """The command as the runner does it: input validated, then the worker's method."""
    return await perform(worker, command, data)


def test_checksum_is_of_the_canonical_form_whatever_the_key_order() -> None:
    assert checksum({"b": 1, "a": "é"}) == checksum({"a": "é", "b": 1})
    expected = hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert checksum({"b": 1, "a": "é"}) == expected


async def test_process_data_returns_checksum_and_size() -> None:
    result = await execute(a_worker(), "process_data", {"data": [1, 2]})
    assert result == {"checksum": checksum([1, 2]), "size_bytes": 5}


async def test_transform_uppercases_nested_strings_and_aggregates() -> None:
    worker = a_worker()
    upper = await execute(worker, "transform", {"operation": "uppercase", "data": {"k": ["a", 1]}})
    assert upper == {"data": {"k": ["A", 1]}}
    totals = await execute(worker, "transform", {"operation": "aggregate", "data": [1, 2, 3]})
    assert totals == {"count": 3, "sum": 6, "mean": 2}
    rows = [{"g": "x", "v": 1}, {"g": "y", "v": 2}, {"g": "x", "v": 3}]
    grouped = await execute(
        worker, "transform", {"operation": "aggregate", "data": rows, "group_by": "g", "field": "v"}
    )
    assert grouped["groups"]["x"] == {"count": 2, "sum": 4, "mean": 2}


async def test_bad_data_is_refused() -> None:
    worker = a_worker()
    with pytest.raises(CommandFailed) as failed:
        await execute(worker, "transform", {"operation": "aggregate", "data": ["a"]})
    assert failed.value.code == "invalid_command"
    with pytest.raises(ValidationError):
        await execute(worker, "transform", {"operation": "shout", "data": "a"})
    with pytest.raises(ValidationError):
        await execute(worker, "analyze", {"values": []})


def test_analysis_gives_statistics_and_verdicts() -> None:
    stats = describe([1, 2, 3, 4, 5])
    assert stats["count"] == 5
    assert stats["median"] == 3
    assert stats["stdev"] == pytest.approx(1.5811, rel=1e-3)
    assert stats["trend"] == "increasing"
    assert stats["pattern"] == "monotonic_increasing"
    assert describe([5, 5, 5])["pattern"] == "constant"
    assert describe([1, 3, 1, 3, 1])["pattern"] == "alternating"
    assert describe([9, 7, 5, 1])["trend"] == "decreasing"
    assert describe([1, 5, 1, 5, 1, 5])["trend"] == "stable"
